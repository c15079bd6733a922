// bagnet-lens evidence browser. Plain JS, no libraries, works from file:// (docs/evidence-browser.md).
// Data arrives as scripts calling bagnetSite.overview / list / detail; nothing is fetched.
'use strict';
(function () {
  const PAGE_SIZE = 120;      // cards per page: enough to scan, few enough to render instantly
  const CHUNK = 64;           // samples per detail chunk (data/detail/K.js holds [64K, 64K + 64))
  const MAIN_MAP_PX = 232;    // display size of the predicted / true / margin maps
  const SMALL_MAP_PX = 132;   // the other top-k maps
  const SORTS = {
    index: 'index',
    margin: 'margin (largest first)',
    'prob-high': 'confidence (highest first)',
    'prob-low': 'confidence (lowest first)',
    flip: 'flip-set size (largest first)',
  };
  const DEFAULTS = { view: 'all', true: '', pred: '', pair: '', sort: 'index', page: '1', sample: '' };

  const S = {
    overview: null, list: null,
    details: {},          // image index -> detail record
    chunks: {},           // chunk number -> 'loading' | 'done' | 'error'
    state: Object.assign({}, DEFAULTS),
    rowOf: null,          // image index -> row in the list
    cache: { key: null, rows: null },
    listKey: null, openSample: null,
    opacity: 0.85,
    // flip: null = automatic (drawn unless the set is too large to read as boxes)
    boxKinds: { pos: true, neg: true, margin: true, flip: null },
  };

  // ---- data entry points (called by the data scripts) ----
  window.bagnetSite = {
    overview(d) { S.overview = d; },
    list(d) { S.list = columns(d); },
    detail(k, records) {
      for (const key of Object.keys(records)) S.details[key] = records[key];
      S.chunks[k] = 'done';
      if (S.openSample !== null) renderSampleView(true);
    },
  };

  // Typed arrays make filtering/sorting 50k rows a few milliseconds.
  function columns(d) {
    const n = d.n;
    const L = { n, thumb: d.thumb, image: d.image, size: d.size,
      index: Int32Array.from(d.index), true: Int32Array.from(d.true), pred: Int32Array.from(d.pred),
      prob: Float64Array.from(d.prob), margin: Float64Array.from(d.margin),
      gap: Float64Array.from(d.gap || []), flip: Int32Array.from(d.flip) };
    return L;
  }

  // ---- small helpers ----
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    if (attrs) for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = v;
      else if (k === 'style') Object.assign(el.style, v);
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children.flat(Infinity)) if (c !== null && c !== undefined && c !== false)
      el.append(c instanceof Node ? c : String(c));
    return el;
  }
  const $ = (id) => document.getElementById(id);
  const num = (x, d = 3) => (x === null || x === undefined || Number.isNaN(x)) ? '–' : Number(x).toFixed(d);
  const signed = (x, d = 2) => (x > 0 ? '+' : x < 0 ? '−' : '') + Math.abs(x).toFixed(d);
  // not toLocaleString: the first Intl call costs ~50 ms in Chromium
  const thousands = (x) => String(x).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  const pct = (x, d = 1) => (x === null || x === undefined) ? '–' : (100 * x).toFixed(d) + '%';
  const name = (c) => c < 0 ? 'unknown' : (S.overview.classes[c] ? S.overview.classes[c].name : 'class ' + c);
  const isMistake = (r) => S.list.true[r] >= 0 && S.list.true[r] !== S.list.pred[r];
  const url = (dir, file) => encodeURI(dir + file);
  const boxStr = (b) => '[' + b.map((x) => +Number(x).toFixed(1)).join(', ') + ')';

  function showError(msg) {
    const el = $('load-error');
    el.hidden = false;
    el.append(h('p', { text: msg }));
  }

  // ---- hash state: filter / sort / page / open sample survive reload and back/forward ----
  function readHash() {
    const p = new URLSearchParams(location.hash.slice(1));
    const s = Object.assign({}, DEFAULTS);
    for (const k of Object.keys(DEFAULTS)) if (p.has(k)) s[k] = p.get(k);
    if (!SORTS[s.sort]) s.sort = 'index';
    S.state = s;
  }
  function setHash(changes) {
    const s = Object.assign({}, S.state, changes);
    const p = new URLSearchParams();
    for (const k of Object.keys(DEFAULTS)) if (s[k] !== DEFAULTS[k] && s[k] !== '') p.set(k, s[k]);
    const next = '#' + p.toString().replace(/%2C/g, ',');
    if (next === location.hash || (next === '#' && !location.hash)) return render();
    // pushState + render now: waiting for the asynchronous hashchange costs a visible 40-80 ms.
    // Back/forward still arrive as popstate/hashchange and re-render from the hash.
    try { history.pushState(null, '', next === '#' ? location.pathname + location.search : next); }
    catch (e) { location.hash = next; return; }  // hashchange -> render()
    render();
  }

  // ---- filtering and sorting over the columnar list ----
  function currentRows() {
    const st = S.state, L = S.list;
    const key = [st.view, st.true, st.pred, st.pair, st.sort].join('|');
    if (S.cache.key === key) return S.cache.rows;
    const t = st.true === '' ? null : +st.true, p = st.pred === '' ? null : +st.pred;
    const pair = st.pair ? st.pair.split(',').map(Number) : null;
    const errorsOnly = st.view === 'errors';
    const out = new Int32Array(L.n);
    let m = 0;
    for (let r = 0; r < L.n; r++) {
      const tr = L.true[r], pr = L.pred[r];
      if (errorsOnly && !(tr >= 0 && tr !== pr)) continue;
      if (t !== null && tr !== t) continue;
      if (p !== null && pr !== p) continue;
      if (pair && (tr !== pair[0] || pr !== pair[1])) continue;
      out[m++] = r;
    }
    const rows = out.slice(0, m);
    const cmp = comparator(st.sort);
    if (cmp) rows.sort(cmp);
    S.cache = { key, rows };
    return rows;
  }
  function comparator(sort) {
    const L = S.list;
    const tie = (a, b) => L.index[a] - L.index[b];
    // "no flip set" (-1) is the hardest case, so it sorts before every finite size
    const flipKey = (r) => (L.flip[r] < 0 ? Infinity : L.flip[r]);
    switch (sort) {
      case 'margin': return (a, b) => (L.margin[b] - L.margin[a]) || tie(a, b);
      case 'prob-high': return (a, b) => (L.prob[b] - L.prob[a]) || tie(a, b);
      case 'prob-low': return (a, b) => (L.prob[a] - L.prob[b]) || tie(a, b);
      case 'flip': return (a, b) => (flipKey(b) - flipKey(a)) || tie(a, b);
      default: return null;  // the list is already in index order
    }
  }
  function rowOfIndex(index) {
    if (!S.rowOf) {
      S.rowOf = new Map();
      for (let r = 0; r < S.list.n; r++) S.rowOf.set(S.list.index[r], r);
    }
    return S.rowOf.get(index);
  }

  // ================= overview =================
  function renderOverview() {
    const O = S.overview, root = $('overview');
    root.textContent = '';
    root.append(
      h('div', { class: 'ov-top' }, fingerprint(O), runNumbers(O)),
      h('div', { class: 'ov-mid' },
        h('div', { class: 'card' }, h('h3', { text: 'Confusion matrix' }), confusionGrid(O)),
        h('div', { class: 'ov-side' },
          h('div', { class: 'card' }, h('h3', { text: 'Most frequent confusions' }), topPairs(O)),
          h('div', { class: 'card' }, h('h3', { text: 'Per-class accuracy' }), classTable(O)))));
  }

  function fingerprint(O) {
    const m = O.model || {}, pp = m.preprocessing || {};
    const sha = m.sha256 || '';
    const arr = (a) => Array.isArray(a) ? '[' + a.map((x) => +Number(x).toFixed(4)).join(', ') + ']' : '–';
    const prep = `resize ${pp.resize ?? 'kept'}, crop ${pp.crop ?? 'none'}, ${pp.channels} ch, mean ${arr(pp.mean)}, std ${arr(pp.std)}`;
    const rows = [
      // The file name; the full path (of the machine the run was on) on hover.
      ['model file', h('span', { title: m.file || '' }, String(m.file || '–').split(/[\\/]/).pop())],
      ['sha256', h('abbr', { title: sha, class: 'mono' }, sha.slice(0, 12) + '…')],
      ['architecture', h('span', { title: m.architecture || '' }, m.arch_name || '–')],
      ['receptive field', m.receptive_field + ' px'], ['stride', m.stride],
      ['classes', m.num_classes], ['torch', m.torch_version], ['device', m.device],
      ['precision', m.precision], ['preprocessing', prep],
    ];
    const site = O.site || {};
    return h('div', { class: 'card fingerprint' }, h('h3', { text: 'Model' }),
      h('dl', null, rows.map(([k, v]) => [h('dt', { text: k }), h('dd', null, v ?? '–')])),
      h('p', { class: 'muted small', text: `${site.tool || ''} · built ${site.built || '?'} · ${site.generation || ''}` }));
  }

  function runNumbers(O) {
    const r = O.run || {};
    const stat = (label, value, extra) => h('div', Object.assign({ class: 'stat' }, extra || {}),
      h('div', { class: 'stat-v', text: value }), h('div', { class: 'stat-l', text: label }));
    return h('div', { class: 'card run' }, h('h3', { text: 'Run' }),
      h('div', { class: 'stats' },
        stat('samples', thousands(r.reports ?? S.list.n)),
        stat('labelled', thousands(r.labelled ?? 0)),
        stat('accuracy', pct(r.accuracy)),
        stat(`top-${r.top_k ?? 'k'} accuracy`, pct(r.top_k_accuracy)),
        h('button', { class: 'stat stat-btn', title: 'list the mistakes', onclick: () => { setHash({ view: 'errors', true: '', pred: '', pair: '', page: '1' }); scrollToList(); } },
          h('div', { class: 'stat-v err', text: thousands(r.errors ?? 0) }), h('div', { class: 'stat-l', text: 'mistakes' })),
        stat('failed', r.failed ?? 0)),
      r.shard ? h('p', { class: 'muted small', text: 'shard ' + JSON.stringify(r.shard) }) : null);
  }

  function confusionGrid(O) {
    const C = O.confusion, cls = C.classes, n = cls.length;
    const cell = n <= 12 ? 40 : Math.max(14, Math.floor(520 / n));
    const showCounts = cell >= 22;
    let maxOff = 1, maxDiag = 1;
    C.counts.forEach((row, i) => row.forEach((v, j) => { if (i === j) maxDiag = Math.max(maxDiag, v); else maxOff = Math.max(maxOff, v); }));
    const grid = h('div', { class: 'cm', role: 'grid', 'aria-label': 'confusion matrix, rows true class, columns predicted class',
      style: { gridTemplateColumns: `auto repeat(${n}, ${cell}px)`, gridTemplateRows: `100px repeat(${n}, ${cell}px)` } });
    grid.append(h('div', { class: 'cm-corner', text: 'true ↓  predicted →' }));
    for (const c of cls) grid.append(h('div', { class: 'cm-col', title: name(c) }, h('span', { text: name(c) })));
    C.counts.forEach((row, i) => {
      grid.append(h('div', { class: 'cm-row', title: name(cls[i]), text: name(cls[i]) }));
      row.forEach((v, j) => {
        const diag = i === j;
        // off-diagonal: sequential warm scale by count; diagonal: neutral grey-blue so it never reads as an error
        const t = v === 0 ? 0 : 0.12 + 0.88 * Math.sqrt(v / (diag ? maxDiag : maxOff));
        const bg = v === 0 ? '' : diag ? `hsl(210 25% ${Math.round(96 - 50 * t)}%)` : `hsl(25 90% ${Math.round(96 - 58 * t)}%)`;
        const dark = v > 0 && (diag ? 96 - 50 * t : 96 - 58 * t) < 58;
        grid.append(h('button', {
          class: 'cm-cell' + (diag ? ' diag' : '') + (dark ? ' dark' : ''), 'data-testid': 'confusion-cell',
          'data-true': cls[i], 'data-pred': cls[j], style: { background: bg },
          title: `true ${name(cls[i])} → predicted ${name(cls[j])}: ${v}`, 'aria-label': `true ${name(cls[i])}, predicted ${name(cls[j])}: ${v}`,
          onclick: () => showPair(cls[i], cls[j]),
        }, showCounts && v ? String(v) : ''));
      });
    });
    const note = C.complete ? null : h('p', { class: 'note' },
      `${n} of ${O.classes.length} classes are shown: those this run met as a true or predicted class (at most 40, most mistakes first): `, cls.map(name).join(', '), '.');
    return h('div', null, note, h('div', { class: 'cm-wrap' }, grid),
      h('p', { class: 'muted small', text: 'Rows: true class; columns: predicted class. Diagonal (correct) in grey-blue, mistakes in orange, darker = more. Click a cell to list its samples.' }));
  }

  function topPairs(O) {
    const pairs = (O.pairs || []).slice(0, 15);
    if (!pairs.length) return h('p', { class: 'muted', text: 'No mistakes.' });
    const max = pairs[0].count;
    return h('ol', { class: 'pairs' }, pairs.map((p) => h('li', null,
      h('button', { class: 'linkish', onclick: () => showPair(p.true, p.pred), title: 'list these mistakes' },
        h('span', { class: 'bar', style: { width: (100 * p.count / max) + '%' } }),
        h('span', { class: 'pair-t', text: `${name(p.true)} → ${name(p.pred)}` }), h('span', { class: 'pair-n', text: p.count })))));
  }

  function classTable(O) {
    const body = h('tbody');
    let order = 'class';
    const fill = () => {
      // Classes the run never met (no sample, never predicted) would bury the rest under 1000 rows of zeros.
      const cs = O.classes.filter((c) => c.count > 0 || c.predicted > 0);
      const acc = (c) => c.count ? c.correct / c.count : 2;
      if (order === 'accuracy') cs.sort((a, b) => acc(a) - acc(b) || a.index - b.index);
      if (order === 'count') cs.sort((a, b) => b.count - a.count || a.index - b.index);
      body.textContent = '';
      for (const c of cs) body.append(h('tr', { class: 'clickable', title: 'list samples of true class ' + c.name,
        onclick: () => { setHash({ view: 'all', true: String(c.index), pred: '', pair: '', page: '1' }); scrollToList(); } },
      h('td', { text: c.name }), h('td', { class: 'num', text: c.count }),
      h('td', { class: 'accbar' }, c.count ? h('span', { class: 'bar', style: { width: pct(c.correct / c.count) } }) : null,
        h('span', { class: 'num', text: c.count ? pct(c.correct / c.count) : '–' })),
      h('td', { class: 'num', text: c.predicted })));
    };
    const head = (label, key) => h('th', { scope: 'col' }, h('button', { class: 'linkish', title: 'sort by ' + label,
      onclick: () => { order = key; fill(); } }, label));
    fill();
    return h('div', { class: 'table-scroll' }, h('table', { class: 'classes' },
      h('thead', null, h('tr', null, head('class', 'class'), head('count', 'count'), head('accuracy', 'accuracy'),
        h('th', { scope: 'col', title: 'how often the model predicted this class', text: 'predicted' }))), body));
  }

  function showPair(t, p) {
    setHash({ view: 'all', true: '', pred: '', pair: `${t},${p}`, page: '1', sample: '' });
    scrollToList();
  }
  function scrollToList() { $('samples-sec').scrollIntoView({ block: 'start' }); }

  // ================= sample list =================
  function renderControls() {
    const root = $('controls');
    const classOptions = (sel) => [h('option', { value: '', text: 'any' })].concat(
      S.overview.classes.map((c) => h('option', { value: String(c.index), text: `${c.index}: ${c.name}`, selected: sel === String(c.index) })));
    const st = S.state;
    root.textContent = '';
    root.append(...[
      h('div', { class: 'seg', role: 'group', 'aria-label': 'which samples' },
        h('button', { 'data-testid': 'filter-all', 'aria-pressed': String(st.view !== 'errors'), onclick: () => setHash({ view: 'all', page: '1' }) }, 'All'),
        h('button', { 'data-testid': 'filter-errors', 'aria-pressed': String(st.view === 'errors'), onclick: () => setHash({ view: 'errors', page: '1' }) }, 'Mistakes')),
      h('label', null, 'true ', h('select', { onchange: (e) => setHash({ true: e.target.value, page: '1' }) }, classOptions(st.true))),
      h('label', null, 'predicted ', h('select', { onchange: (e) => setHash({ pred: e.target.value, page: '1' }) }, classOptions(st.pred))),
      st.pair ? h('span', { class: 'chip' }, 'pair ' + st.pair.split(',').map((c) => name(+c)).join(' → '),
        h('button', { 'aria-label': 'remove the pair filter', title: 'remove', onclick: () => setHash({ pair: '', page: '1' }) }, '×')) : null,
      h('label', null, 'sort ', h('select', { onchange: (e) => setHash({ sort: e.target.value, page: '1' }) },
        Object.entries(SORTS).map(([k, v]) => h('option', { value: k, text: v, selected: st.sort === k })))),
      h('span', { class: 'count' }, h('strong', { 'data-testid': 'sample-count', text: String(currentRows().length) }), ' listed'),
      h('span', { class: 'muted small keys', text: 'keys: n/p next/previous mistake · j/k next/previous sample · Esc closes' }),
    ].filter(Boolean));
  }

  function renderList() {
    const rows = currentRows(), L = S.list;
    const pages = Math.max(1, Math.ceil(rows.length / PAGE_SIZE));
    const page = Math.min(pages, Math.max(1, parseInt(S.state.page, 10) || 1));
    const grid = $('sample-grid');
    grid.textContent = '';
    const frag = document.createDocumentFragment();
    const thumbs = S.overview.images.thumbs;
    for (let i = (page - 1) * PAGE_SIZE; i < Math.min(rows.length, page * PAGE_SIZE); i++) {
      const r = rows[i], idx = L.index[r], t = L.true[r], p = L.pred[r], wrong = isMistake(r);
      const small = Math.max(L.size[r][0], L.size[r][1]) <= 64;
      frag.append(h('button', {
        class: 'sample' + (wrong ? ' wrong' : t < 0 ? ' unlabelled' : ''), 'data-testid': 'sample',
        'data-index': idx, 'data-true': t, 'data-pred': p,
        title: `#${idx}: true ${name(t)}, predicted ${name(p)}`, onclick: () => setHash({ sample: String(idx) }),
      },
      h('img', { src: url(thumbs, L.thumb[r]), alt: `sample ${idx} thumbnail`, loading: 'lazy', class: small ? 'pixelated' : null, width: 64, height: 64 }),
      h('span', { class: 's-idx' }, '#' + idx, wrong ? h('span', { class: 'badge', text: '✗ mistake' }) : null),
      h('span', { class: 's-cls' }, wrong ? [h('s', { text: name(t) }), ' → ', h('b', { text: name(p) })] : t < 0 ? ['? → ', h('b', { text: name(p) })] : h('b', { text: name(p) })),
      h('span', { class: 's-num' }, 'p ' + num(L.prob[r], 2), wrong ? ` · margin ${num(L.margin[r], 2)}` : '',
        wrong ? ` · flip ${L.flip[r] < 0 ? 'none' : L.flip[r]}` : '')));
    }
    if (!rows.length) frag.append(h('p', { class: 'muted', text: 'No sample matches this filter.' }));
    grid.append(frag);
    for (const id of ['pager-top', 'pager-bottom']) renderPager($(id), page, pages, rows.length);
  }

  function renderPager(root, page, pages, total) {
    root.textContent = '';
    if (pages <= 1) return;
    const go = (pg) => setHash({ page: String(pg) });
    const btn = (label, pg, extra) => h('button', Object.assign({ onclick: () => go(pg), disabled: pg < 1 || pg > pages || pg === page,
      'aria-current': pg === page && typeof label === 'number' ? 'page' : null }, extra || {}), String(label));
    const wanted = new Set([1, 2, pages - 1, pages, page - 2, page - 1, page, page + 1, page + 2]);
    const nums = [...wanted].filter((x) => x >= 1 && x <= pages).sort((a, b) => a - b);
    root.append(btn('‹ prev', page - 1, { 'aria-label': 'previous page' }));
    nums.forEach((x, k) => {
      if (k && x - nums[k - 1] > 1) root.append(h('span', { class: 'gap', text: '…' }));
      root.append(btn(x, x));
    });
    root.append(btn('next ›', page + 1, { 'aria-label': 'next page' }),
      h('span', { class: 'muted small', text: ` ${thousands((page - 1) * PAGE_SIZE + 1)}–${thousands(Math.min(total, page * PAGE_SIZE))} of ${thousands(total)}` }));
  }

  // ================= sample view =================
  function loadChunk(k) {
    if (S.chunks[k]) return;
    S.chunks[k] = 'loading';
    const src = `${S.overview.site.generation}/data/detail/${k}.js`;
    const el = h('script', { src });
    el.addEventListener('error', () => { S.chunks[k] = 'error'; renderSampleView(true); });
    el.addEventListener('load', () => { if (S.chunks[k] === 'loading') { S.chunks[k] = 'error'; renderSampleView(true); } });
    document.body.append(el);
  }

  function renderSampleView(force) {
    const want = S.state.sample === '' ? null : +S.state.sample;
    const root = $('sample-view'), inner = $('sv-inner');
    if (want === null) {
      if (S.openSample !== null) { root.hidden = true; document.body.classList.remove('modal-open'); inner.textContent = ''; hideTip(); }
      S.openSample = null;
      return;
    }
    if (want === S.openSample && !force) return;
    S.openSample = want;
    root.hidden = false;
    document.body.classList.add('modal-open');
    inner.textContent = '';
    const k = Math.floor(want / CHUNK), d = S.details[String(want)];
    inner.append(viewHeader(want, d));
    if (!d) {
      if (S.chunks[k] === 'error' || rowOfIndex(want) === undefined) {
        inner.append(h('p', { class: 'load-error', role: 'alert',
          text: rowOfIndex(want) === undefined ? `There is no sample #${want} in this report.`
            : `Could not load the details of sample #${want} (${S.overview.site.generation}/data/detail/${k}.js is missing or broken).` }));
      } else {
        inner.append(h('p', { class: 'muted', text: 'Loading…' }));
        loadChunk(k);
      }
      return;
    }
    inner.append(sampleBody(want, d));
    inner.focus({ preventScroll: true });
  }

  function viewHeader(index, d) {
    const r = rowOfIndex(index), L = S.list;
    const known = r !== undefined;
    const t = known ? L.true[r] : -1, p = known ? L.pred[r] : -1;
    const wrong = known && isMistake(r);
    return h('div', { class: 'sv-head' },
      h('div', null,
        h('h2', { id: 'sv-title' }, `#${index} `, wrong ? h('span', { class: 'badge big', text: '✗ mistake' })
          : t >= 0 ? h('span', { class: 'badge ok', text: '✓ correct' }) : h('span', { class: 'badge', text: 'unlabelled' })),
        known ? h('p', { class: 'sv-sub' }, 'true ', h('b', { text: name(t) }), ' → predicted ', h('b', { text: name(p) }),
          ` (p = ${num(L.prob[r], 3)})`, d ? h('span', { class: 'muted', text: ' · ' + d.image.source }) : null) : null),
      h('div', { class: 'sv-nav' },
        h('button', { onclick: () => step(-1, true), title: 'previous mistake (p, ←)' }, '‹ mistake'),
        h('button', { onclick: () => step(-1, false), title: 'previous sample (k)' }, '‹ sample'),
        h('button', { onclick: () => step(1, false), title: 'next sample (j)' }, 'sample ›'),
        h('button', { onclick: () => step(1, true), title: 'next mistake (n, →)' }, 'mistake ›'),
        h('button', { class: 'close', onclick: closeView, 'aria-label': 'close (Esc)', title: 'close (Esc)' }, '×')));
  }

  function sampleBody(index, d) {
    const v = d.view;
    const predCls = d.classes.find((c) => c.roles.includes('predicted'));
    const dec = d.decision;
    return h('div', { class: 'sv-body' },
      h('div', { class: 'sv-row' },
        imagePanel(d, predCls),
        h('div', { class: 'sv-facts' }, decisionText(dec), predictionsTable(d), evidenceTable(d))),
      mapsPanel(d),
      d.occlusion && d.occlusion.length ? occlusionTable(d) : null,
      h('div', { class: 'sv-links' },
        h('a', { href: encodeURI(v.raw), text: 'raw maps (' + v.raw + ')' }), ' · ',
        // the record path is relative to index.html; an older contract draft wrote "../../reports.jsonl"
        h('a', { href: v.record && !v.record.startsWith('..') ? v.record : 'reports.jsonl', text: 'reports.jsonl' }),
        rowOfIndex(index) !== undefined ? ` (line ${rowOfIndex(index) + 1})` : '',
        recordBlock(d)));
  }

  function decisionText(dec) {
    if (!dec) return h('p', { class: 'muted', text: 'True class unknown: no decision analysis.' });
    if (dec.correct) return h('p', null, `Correct: ${dec.true_name} wins with logit ${num(dec.predicted_logit, 3)}.`);
    const fs = dec.flip_set;
    const flip = fs && fs.possible
      ? h('p', { class: 'flip' }, h('span', { class: 'legend-swatch k-flip' }), ` Flip set: removing ${fs.size === 1 ? "this patch" : `these ${fs.size} patches`} from the bag makes `,
        h('b', { text: dec.true_name }), ` win over ${dec.predicted_name}: margin after = ${num(fs.margin_after, 3)}` +
        (fs.top1_after !== null && fs.top1_after !== dec.true_class ? ` (but ${name(fs.top1_after)} is then on top)` : '') + '.')
      : h('p', { class: 'flip' }, 'No flip set: no set of patches (leaving at least one) makes the true class win at the bag level.');
    return h('div', { class: 'decision' },
      h('p', null, 'Margin ', h('b', { text: num(dec.margin, 3) }), ` = logit ${dec.predicted_name} ${num(dec.predicted_logit, 3)} − logit ${dec.true_name} ${num(dec.true_logit, 3)}; true class ranked ${dec.true_rank}.`),
      flip);
  }

  function predictionsTable(d) {
    return h('table', { class: 'compact' }, h('caption', { text: 'Predictions' }),
      h('thead', null, h('tr', null, ['rank', 'class', 'logit', 'probability'].map((x) => h('th', { scope: 'col', text: x })))),
      h('tbody', null, d.predictions.map((p) => h('tr', null, h('td', { class: 'num', text: p.rank }),
        h('td', { text: `${p.name} (${p.class})` }), h('td', { class: 'num', text: num(p.logit, 3) }), h('td', { class: 'num', text: pct(p.probability, 2) })))));
  }

  function evidenceTable(d) {
    return h('table', { class: 'compact' }, h('caption', { text: 'Evidence per explained class (mean of patch logits)' }),
      h('thead', null, h('tr', null, ['class', 'roles', 'total evidence', 'logit', 'Σ positive (n)', 'Σ negative (n)'].map((x) => h('th', { scope: 'col', text: x })))),
      h('tbody', null, d.classes.map((c) => h('tr', null, h('td', { text: c.name }), h('td', { class: 'small', text: c.roles.join(', ') }),
        h('td', { class: 'num', text: num(c.total_evidence, 3) }), h('td', { class: 'num', text: num(c.logit, 3) }),
        h('td', { class: 'num', text: `${num(c.positive.sum, 1)} (${c.positive.count})` }),
        h('td', { class: 'num', text: `${num(c.negative.sum, 1)} (${c.negative.count})` })))));
  }

  // The original image with the crop box and patch boxes, all placed in original-image pixels.
  function imagePanel(d, predCls) {
    const v = d.view, [oh, ow] = d.image.original_size;
    const fit = 320 / Math.max(oh, ow);
    const W = Math.round(ow * fit), H = Math.round(oh * fit);
    const place = (b) => ({ top: (100 * b[0] / oh) + '%', left: (100 * b[1] / ow) + '%', height: (100 * (b[2] - b[0]) / oh) + '%', width: (100 * (b[3] - b[1]) / ow) + '%' });
    const stage = h('div', { class: 'stage', style: { width: W + 'px', height: H + 'px' } },
      h('img', { src: url(S.overview.images.dir, v.image), alt: `sample ${d.image.index}: ${d.image.source}`, class: Math.max(oh, ow) <= 128 ? 'pixelated' : null }),
      h('div', { class: 'crop-box', style: place(v.crop_box), title: 'the region the model saw (crop box)' }));
    const dec = d.decision || {};
    const kinds = [
      ['pos', `strongest for ${predCls ? predCls.name : 'predicted'}`, predCls ? predCls.top_positive : [], 'logit'],
      ['neg', `strongest against ${predCls ? predCls.name : 'predicted'}`, predCls ? predCls.top_negative : [], 'logit'],
      ['margin', 'largest margin (pred − true)', dec.margin_patches || [], 'margin'],
      ['flip', 'flip set', (dec.flip_set && dec.flip_set.patches) || [], 'margin'],
    ];
    for (const [kind, label, patches, key] of kinds) patches.forEach((p, i) => {
      const box = h('div', { class: `pbox k-${kind}`, style: place(p.box_original), 'data-kind': kind });
      const text = `${label} #${i + 1}\n${key} ${num(p[key], 3)}` + (p.share !== undefined ? ` (share ${pct(p.share)})` : '') +
        `\ncell (${p.cell[0]}, ${p.cell[1]})\ninput box ${boxStr(p.box_input)}\noriginal box ${boxStr(p.box_original)}`;
      box.addEventListener('mousemove', (e) => showTip(e, text));
      box.addEventListener('mouseleave', hideTip);
      stage.append(box);
    });
    const flipCount = kinds[3][2].length;
    const shown = (kind) => (S.boxKinds[kind] === null ? flipCount <= 25 : S.boxKinds[kind]);
    const applyKinds = () => { for (const [kind] of kinds) stage.classList.toggle('hide-' + kind, !shown(kind)); };
    applyKinds();
    const legend = h('div', { class: 'legend' }, kinds.filter(([, , ps]) => ps.length).map(([kind, label, ps]) => h('label', null,
      h('input', { type: 'checkbox', checked: shown(kind), onchange: (e) => { S.boxKinds[kind] = e.target.checked; applyKinds(); } }),
      h('span', { class: `legend-swatch k-${kind}` }), ` ${label} (${ps.length})`)),
    h('span', { class: 'legend-item' }, h('span', { class: 'legend-swatch crop' }), ' crop box'));
    return h('div', { class: 'sv-image' }, stage, legend);
  }

  function mapsPanel(d) {
    const v = d.view, O = S.overview;
    const main = v.maps.filter((m) => m.role !== 'top_k'), rest = v.maps.filter((m) => m.role === 'top_k');
    const slider = h('input', { type: 'range', min: 0, max: 100, value: Math.round(S.opacity * 100), 'aria-label': 'map opacity',
      oninput: (e) => { S.opacity = e.target.value / 100; $('sample-view').style.setProperty('--map-opacity', S.opacity); } });
    $('sample-view').style.setProperty('--map-opacity', S.opacity);
    const grad = `linear-gradient(to right, ${O.maps.colors.join(', ')})`;
    const bar = h('div', { class: 'cbar' }, h('div', { class: 'cbar-grad', style: { backgroundImage: grad } }),
      h('div', { class: 'cbar-ticks' }, h('span', { text: '−' + num(v.scale, 2) }), h('span', { text: '0' }), h('span', { text: '+' + num(v.scale, 2) })));
    return h('div', { class: 'maps' },
      h('div', { class: 'maps-head' },
        h('h3', { text: 'Evidence maps' }),
        h('div', { class: 'cbar-wrap' }, bar, h('span', { class: 'small muted', text: `shared scale ±${num(v.scale, 3)} (${O.maps.colormap}); left: against, right: for the class (margin: for predicted over true)` })),
        h('label', { class: 'small' }, 'map opacity ', slider)),
      h('div', { class: 'maps-main' }, main.map((m) => mapFigure(d, m, MAIN_MAP_PX))),
      rest.length ? h('div', { class: 'maps-rest' }, h('p', { class: 'small muted', text: 'other top-k classes' }), rest.map((m) => mapFigure(d, m, SMALL_MAP_PX))) : null);
  }

  // One map over a greyed copy of the model input. Cell i covers input pixels
  // [first_centre + stride*i - stride/2, + stride); the frame spans the input and the map, whichever is larger.
  function mapFigure(d, m, px) {
    const v = d.view, lay = v.layout, [ih, iw] = lay.input_size, s = lay.stride;
    const start = lay.first_centre - s / 2;
    const y0 = Math.min(0, start), x0 = Math.min(0, start);
    const y1 = Math.max(ih, start + lay.rows * s), x1 = Math.max(iw, start + lay.cols * s);
    const k = px / Math.max(y1 - y0, x1 - x0);
    const [oh, ow] = d.image.original_size, cb = v.crop_box;
    const cw = cb[3] - cb[1], ch = cb[2] - cb[0];
    // the crop region of the original, stretched onto the input area (resize + crop are affine)
    const inputBg = h('div', { class: 'map-input', style: {
      left: (-x0 * k) + 'px', top: (-y0 * k) + 'px', width: (iw * k) + 'px', height: (ih * k) + 'px',
      backgroundImage: `url("${url(S.overview.images.dir, v.image)}")`,
      backgroundSize: `${ow / cw * iw * k}px ${oh / ch * ih * k}px`,
      backgroundPosition: `${-cb[1] / cw * iw * k}px ${-cb[0] / ch * ih * k}px` } });
    const roleLabel = m.role === 'top_k' ? 'top-k' : m.role;
    const title = m.role === 'margin' ? 'margin (predicted − true)' : `${m.name} (${roleLabel})`;
    const img = h('img', { 'data-testid': 'map', 'data-role': m.role, 'data-class': m.class === null ? '' : m.class,
      src: url(S.overview.images.maps, m.file), class: 'map-img pixelated',
      alt: m.role === 'margin' ? `margin map (predicted − true logit per patch) for sample ${d.image.index}` : `evidence map for class ${m.name} (${roleLabel})`,
      style: { left: ((start - x0) * k) + 'px', top: ((start - y0) * k) + 'px', width: (lay.cols * s * k) + 'px', height: (lay.rows * s * k) + 'px' } });
    const frame = h('div', { class: 'map-frame', style: { width: ((x1 - x0) * k) + 'px', height: ((y1 - y0) * k) + 'px' } }, inputBg, img);
    // the flip set's cells, outlined on the margin map (readable even when the set is large)
    const fs = d.decision && d.decision.flip_set;
    if (m.role === 'margin' && fs && fs.possible) for (const p of fs.patches) frame.append(h('div', { class: 'flip-cell', style: {
      top: ((start - y0 + p.cell[0] * s) * k) + 'px', left: ((start - x0 + p.cell[1] * s) * k) + 'px', width: (s * k) + 'px', height: (s * k) + 'px' } }));
    frame.addEventListener('mousemove', (e) => {
      const r = frame.getBoundingClientRect();
      const x = x0 + (e.clientX - r.left) / k, y = y0 + (e.clientY - r.top) / k;
      const i = Math.floor((y - start) / s), j = Math.floor((x - start) / s);
      if (i < 0 || j < 0 || i >= lay.rows || j >= lay.cols) return hideTip();
      const val = m.values[i * lay.cols + j];
      const cy = lay.first_centre + s * i, cx = lay.first_centre + s * j, q = lay.patch;
      const box = [Math.max(0, cy - q / 2), Math.max(0, cx - q / 2), Math.min(ih, cy + q / 2), Math.min(iw, cx + q / 2)];
      showTip(e, `${title}\ncell (${i}, ${j})\n${m.role === 'margin' ? 'margin' : 'logit'} ${num(val, 3)}\npatch ${boxStr(box)} in input pixels`);
    });
    frame.addEventListener('mouseleave', hideTip);
    const own = d.classes.find((c) => c.class === m.class);
    const sub = m.role === 'margin' ? (d.decision && d.decision.margin !== undefined ? `mean ${num(d.decision.margin, 3)}` : '') +
        (fs && fs.possible ? ' · outlined: flip set' : '')
      : own ? `logit ${num(own.logit, 3)}` : '';
    return h('figure', { class: 'map-fig' + (px < MAIN_MAP_PX ? ' small' : '') }, frame,
      h('figcaption', null, h('b', { text: title }), sub ? h('span', { class: 'muted', text: ' · ' + sub }) : null));
  }

  function occlusionTable(d) {
    const rows = [];
    for (const o of d.occlusion) for (const c of o.classes) rows.push(h('tr', null,
      h('td', { text: o.target }), h('td', { class: 'num', text: o.masked }), h('td', { text: name(c.class) }),
      h('td', { class: 'num', text: num(c.logit_before, 3) }), h('td', { class: 'num', text: num(c.logit_after, 3) }),
      h('td', { class: 'num', text: num(c.drop, 3) }), h('td', { class: 'num', text: num(c.bag_logit_after, 3) }), h('td', { class: 'num', text: num(c.bag_drop, 3) })));
    return h('div', { class: 'occlusion' }, h('h3', { text: 'Occlusion check' }),
      h('p', { class: 'small muted', text: 'Patches masked with the image mean colour and the model re-run ("drop"), beside removing the same patches from the bag ("bag drop").' }),
      h('table', { class: 'compact' }, h('thead', null, h('tr', null,
        ['target', 'masked', 'class', 'logit before', 'logit after', 'drop', 'bag logit after', 'bag drop'].map((x) => h('th', { scope: 'col', text: x })))),
      h('tbody', null, rows)));
  }

  function recordBlock(d) {
    const pre = h('pre', { class: 'json' });
    const det = h('details', { class: 'record' }, h('summary', { text: 'JSON record' }), pre);
    // stringify lazily: a record is tens of kB
    det.addEventListener('toggle', () => {
      if (det.open && !pre.textContent) {
        const rec = Object.assign({}, d); delete rec.view;
        pre.textContent = JSON.stringify(rec, null, 2);
      }
    });
    return det;
  }

  // ---- navigation between samples ----
  function step(dir, mistakesOnly) {
    const rows = currentRows();
    if (!rows.length) return;
    const cur = S.state.sample === '' ? -1 : rowOfIndex(+S.state.sample);
    let pos = -1;
    if (cur !== undefined && cur >= 0) pos = rows.indexOf(cur);
    // not in the current list (or nothing open): start before the first / after the last
    if (pos < 0) pos = dir > 0 ? -1 : rows.length;
    for (let i = pos + dir; i >= 0 && i < rows.length; i += dir) {
      if (!mistakesOnly || isMistake(rows[i])) {
        setHash({ sample: String(S.list.index[rows[i]]), page: String(Math.floor(i / PAGE_SIZE) + 1) });
        return;
      }
    }
    flash(mistakesOnly ? 'no further mistake in this list' : 'end of the list');
  }
  function closeView() { setHash({ sample: '' }); }
  function flash(text) {
    const el = h('div', { class: 'flash', role: 'status', text });
    document.body.append(el);
    setTimeout(() => el.remove(), 1500);
  }

  function onKey(e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const tag = (e.target.tagName || '').toLowerCase();
    const typing = tag === 'input' || tag === 'select' || tag === 'textarea';
    if (e.key === 'Escape') { if (S.state.sample !== '') { closeView(); e.preventDefault(); } return; }
    if (typing) return;
    const open = S.state.sample !== '';
    const map = { n: [1, true], p: [-1, true], j: [1, false], k: [-1, false] };
    if (open) Object.assign(map, { ArrowRight: [1, true], ArrowLeft: [-1, true] });
    const act = map[e.key];
    if (act) { e.preventDefault(); step(act[0], act[1]); }
  }

  // ---- tooltip ----
  function showTip(e, text) {
    const tip = $('tooltip');
    tip.textContent = text;
    tip.hidden = false;
    const x = Math.min(e.clientX + 14, window.innerWidth - tip.offsetWidth - 8);
    const y = Math.min(e.clientY + 14, window.innerHeight - tip.offsetHeight - 8);
    tip.style.left = x + 'px'; tip.style.top = y + 'px';
  }
  function hideTip() { $('tooltip').hidden = true; }

  // ================= atlas =================
  // Tiles crop the stored image with CSS. Boxes are in original pixels, and the stored image keeps the
  // aspect ratio, so sizing the background to the *original* size scaled to the tile is exact whatever
  // the stored resolution is.
  function atlasTile(index, box, label, tipText) {
    const r = rowOfIndex(index);
    if (r === undefined) return null;
    const [oh, ow] = S.list.size[r];
    const bh = Math.max(1e-6, box[2] - box[0]), bw = Math.max(1e-6, box[3] - box[1]);
    const s = 72 / Math.max(bh, bw);
    const tile = h('button', { class: 'tile', title: tipText, 'aria-label': tipText, onclick: () => setHash({ sample: String(index) }) },
      h('span', { class: 'tile-img' + (s > 3 ? ' pixelated' : ''), role: 'img', 'aria-label': `patch of sample ${index}`, style: {
        width: (bw * s) + 'px', height: (bh * s) + 'px',
        backgroundImage: `url("${url(S.overview.images.dir, S.list.image[r])}")`,
        backgroundSize: `${ow * s}px ${oh * s}px`, backgroundPosition: `${-box[1] * s}px ${-box[0] * s}px` } }),
      h('span', { class: 'tile-label', text: label }));
    return tile;
  }

  function renderAtlas() {
    const A = S.overview.atlas || {}, root = $('atlas');
    root.textContent = '';
    for (const p of A.pairs || []) root.append(h('div', { class: 'atlas-group' },
      h('h3', null, h('button', { class: 'linkish', onclick: () => showPair(p.true, p.pred), title: 'list these mistakes' },
        `${name(p.true)} → ${name(p.pred)} (${p.count} mistake${p.count === 1 ? '' : 's'})`)),
      h('div', { class: 'tiles' }, p.patches.map((t) => atlasTile(t.index, t.box,
        `${pct(t.share, 0)} · m ${num(t.margin, 2)}`, `sample #${t.index}, cell (${t.cell}), margin ${num(t.margin, 3)}, ${pct(t.share)} of the margin`)))));
    if ((A.classes || []).length) root.append(h('h3', { class: 'atlas-sub', text: 'Most informative patches per class' }));
    for (const c of A.classes || []) root.append(h('div', { class: 'atlas-group' },
      h('h4', { text: `most informative patches of class ${name(c.class)}` }),
      h('div', { class: 'tiles' }, c.patches.map((t) => atlasTile(t.index, t.box, `logit ${num(t.logit, 1)}`,
        `sample #${t.index}, cell (${t.cell}), logit ${num(t.logit, 3)} for ${name(c.class)}`)))));
    if (!root.children.length) root.append(h('p', { class: 'muted', text: 'No atlas in this report.' }));
  }

  // ================= wiring =================
  function render() {
    const t0 = performance.now();
    readHash();
    const st = S.state;
    const key = [st.view, st.true, st.pred, st.pair, st.sort, st.page].join('|');
    if (key !== S.listKey) { S.listKey = key; renderControls(); renderList(); }
    renderSampleView(false);
    window.bagnetSite.lastRenderMs = performance.now() - t0;  // read by the benchmark
  }

  function start() {
    if (!S.overview || !S.list) {
      showError(`The report data did not load (${!S.overview ? 'data/overview.js' : 'data/list.js'}). ` +
        'Keep index.html next to its site-* folder, or rebuild the site with bagnet browse OUTDIR.');
      return;
    }
    const t0 = performance.now(), T = {};
    renderOverview(); T.overview = performance.now() - t0;
    render(); T.list = performance.now() - t0 - T.overview;
    renderAtlas(); T.atlas = performance.now() - t0 - T.overview - T.list;
    window.bagnetSite.timings = T;
    window.addEventListener('hashchange', render);
    window.addEventListener('popstate', render);
    document.addEventListener('keydown', onKey);
    // section links scroll without touching the hash, which holds the filter state
    for (const a of document.querySelectorAll('a[data-jump]')) a.addEventListener('click', (e) => {
      e.preventDefault();
      document.querySelector(a.getAttribute('href')).scrollIntoView({ block: 'start' });
    });
    $('sample-view').addEventListener('click', (e) => { if (e.target.id === 'sample-view') closeView(); });
    window.bagnetSite.startupMs = performance.now() - t0;
  }

  // test/benchmark hook: time one filter + sort pass without the DOM
  window.bagnetSite.timeFilter = function (changes) {
    const saved = S.state;
    S.state = Object.assign({}, DEFAULTS, changes);
    S.cache.key = null;
    const t0 = performance.now();
    const n = currentRows().length;
    const ms = performance.now() - t0;
    S.state = saved; S.cache.key = null;
    return { n, ms };
  };

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
