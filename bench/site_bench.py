#!/usr/bin/python3
"""Benchmark of the evidence browser (`bagnet report --html`, `bagnet browse`; docs/evidence-browser.md).

usage: bench/site_bench.py --bagnet PATH --fashion-mnist DIR --work DIR [--json FILE] [--samples N]

Times a plain report against one with --html, two site rebuilds, measures the site's size and, in headless
Chromium (Debian's chromium + chromedriver, python3-selenium), how fast the overview, the mistake filter and
a sample view become usable. Prints numbers; never fails on them. WORK/plain and WORK/html are replaced.
"""
import argparse, gzip, json, os, resource, shutil, statistics, struct, subprocess, sys, time

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
except ImportError:  # pyenv pythons do not see Debian's python3-selenium
    if os.path.realpath(sys.executable) != os.path.realpath('/usr/bin/python3') and not os.environ.get('BENCH_REEXEC'):
        os.environ['BENCH_REEXEC'] = '1'
        os.execv('/usr/bin/python3', ['/usr/bin/python3'] + sys.argv)
    sys.exit('python3-selenium is not installed (apt-get install python3-selenium chromium chromium-driver)')

# Installed into every page before its own scripts: bench.watch(name, cond) stores performance.now() (ms since
# navigation start) in bench.t[name] the first time cond() holds, checked on every DOM change and image load.
WATCH_JS = r"""
window.bench = {t: {}, watch(name, cond) {
  const check = () => { if (!(name in bench.t) && cond()) { bench.t[name] = performance.now(); mo.disconnect(); } };
  const mo = new MutationObserver(check);
  mo.observe(document, {childList: true, subtree: true, characterData: true, attributes: true});
  document.addEventListener('load', check, true);
  check();
}, clickAt(name) { document.addEventListener('click', () => { bench.t[name] = performance.now(); },
                                            {capture: true, once: true}); }};
const $$ = s => document.querySelectorAll(s);
bench.count = () => { const e = document.querySelector('[data-testid="sample-count"]');
                      return e ? Number(e.textContent.replace(/,/g, '')) : null; };
bench.watch('overview', () => bench.count() === %d && $$('[data-testid="confusion-cell"]').length > 0);
"""
MAPS_LOADED = ('const m = [...document.querySelectorAll("#sample-view [data-testid=map]")];'
               'return m.length > 0 && m.every(i => i.complete && i.naturalWidth > 0);')


def subset(src_dir, n, dst_dir):
    """The first n Fashion-MNIST test images and labels, as idx files the report finds by name."""
    os.makedirs(dst_dir, exist_ok=True)
    for name, head in [('t10k-images-idx3-ubyte.gz', 16), ('t10k-labels-idx1-ubyte.gz', 8)]:
        with gzip.open(os.path.join(src_dir, name)) as f:
            data = f.read()
        per = 28 * 28 if head == 16 else 1
        hdr = bytearray(data[:head]); struct.pack_into('>I', hdr, 4, n)
        with gzip.open(os.path.join(dst_dir, name), 'wb') as f:
            f.write(bytes(hdr) + data[head:head + n * per])
    return os.path.join(dst_dir, 't10k-images-idx3-ubyte.gz')


def timed(cmd):
    """Wall and CPU (user + system) seconds of a command."""
    r0, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall, r1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime
    print(f'  {wall:8.2f} s wall {cpu:8.2f} s cpu  {" ".join(cmd[1:])}', flush=True)
    return {'wall_s': round(wall, 3), 'cpu_s': round(cpu, 3), 'load1': os.getloadavg()[0]}


def tree(path):
    """Bytes (apparent and on disk) and files under path."""
    size = disk = files = 0
    for root, _, names in os.walk(path):
        for n in names:
            st = os.stat(os.path.join(root, n))
            size, disk, files = size + st.st_size, disk + st.st_blocks * 512, files + 1
    return {'bytes': size, 'disk_bytes': disk, 'files': files}


def make_driver(n):
    opts = webdriver.ChromeOptions()
    opts.binary_location = '/usr/bin/chromium'
    for a in ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--window-size=1280,1000',
              '--force-device-scale-factor=1']:
        opts.add_argument(a)
    d = webdriver.Chrome(service=Service('/usr/bin/chromedriver'), options=opts)
    d.execute_cdp_cmd('Network.setCacheDisabled', {'cacheDisabled': True})
    d.execute_cdp_cmd('Page.addScriptToEvaluateOnNewDocument', {'source': WATCH_JS % n})
    return d


def wait(d, name, cond, t0, timeout=60):
    """Poll until the page recorded bench.t[name] and cond holds; (in-page ms, wall s since t0)."""
    while time.perf_counter() - t0 < timeout:
        if d.execute_script(f'return "{name}" in bench.t') and d.execute_script(cond):
            return d.execute_script(f'return bench.t["{name}"]'), time.perf_counter() - t0
        time.sleep(0.01)
    raise TimeoutError(f'{name} not reached in {timeout} s')


def browser(outdir, n, loads=3):
    d, url, res = make_driver(n), 'file://' + os.path.abspath(os.path.join(outdir, 'index.html')), {}
    try:
        over = []
        for _ in range(loads):
            d.get('about:blank')
            t0 = time.perf_counter()
            d.get(url)
            page, wall = wait(d, 'overview', 'return true', t0)
            nav = d.execute_script('const e = performance.getEntriesByType("navigation")[0];'
                                   'return [e.domContentLoadedEventEnd, e.loadEventEnd];')
            over.append({'page_ms': round(page), 'wall_s': round(wall, 3),
                         'dom_content_loaded_ms': round(nav[0]), 'load_ms': round(nav[1])})
        res['overview'] = over
        res['overview_median'] = {k: statistics.median(o[k] for o in over) for k in over[0]}
        before = d.execute_script('return bench.count()')
        d.execute_script('bench.clickAt("errors_click"); bench.watch("errors", () => bench.count() !== %d)' % before)
        t0 = time.perf_counter()
        d.find_element(By.CSS_SELECTOR, '[data-testid="filter-errors"]').click()
        page, wall = wait(d, 'errors', 'return true', t0)
        res['filter_errors'] = {'page_ms': round(page - d.execute_script('return bench.t.errors_click')),
                                'wall_s': round(wall, 3), 'mistakes': d.execute_script('return bench.count()')}
        card = d.find_element(By.CSS_SELECTOR, '[data-testid="sample"]')
        d.execute_script('bench.clickAt("sample_click"); bench.watch("sample", () => (function () {%s})())'
                         % MAPS_LOADED)
        t0 = time.perf_counter()
        card.click()
        page, wall = wait(d, 'sample', MAPS_LOADED, t0)
        res['sample_view'] = {'page_ms': round(page - d.execute_script('return bench.t.sample_click')),
                              'wall_s': round(wall, 3), 'index': int(card.get_attribute('data-index')),
                              'maps': len(d.find_elements(By.CSS_SELECTOR, '#sample-view [data-testid="map"]'))}
    finally:
        d.quit()
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--bagnet', required=True)
    ap.add_argument('--fashion-mnist', required=True, metavar='DIR')
    ap.add_argument('--work', required=True, metavar='DIR')
    ap.add_argument('--json', metavar='FILE')
    ap.add_argument('--samples', type=int, help='the first N test images (default: all 10,000)')
    ap.add_argument('--threads', type=int, default=2)
    a = ap.parse_args()
    work = os.path.abspath(a.work)
    data = os.path.join(a.fashion_mnist, 't10k-images-idx3-ubyte.gz')
    if a.samples:
        data = subset(a.fashion_mnist, a.samples, os.path.join(work, f'data-{a.samples}'))
    out = {'date': time.strftime('%Y-%m-%d %H:%M'), 'cores': os.cpu_count(), 'threads': a.threads, 'dataset': data}
    print(f'dataset {data}, {a.threads} threads, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}')
    plain, html = os.path.join(work, 'plain'), os.path.join(work, 'html')
    for p in (plain, html):
        shutil.rmtree(p, ignore_errors=True)  # a report resumes an existing folder
    base = [a.bagnet, 'report', data, '--threads', str(a.threads), '-o']
    out['report_plain'] = timed(base + [plain])
    out['report_html'] = timed(base + [html, '--html'])
    out['browse'] = [timed([a.bagnet, 'browse', html]) for _ in range(2)]
    with open(os.path.join(html, 'reports.jsonl')) as f:
        n = sum(1 for line in f if line.strip())
    site = [s for s in os.listdir(html) if s.startswith('site-')][0]
    sizes = {k: tree(os.path.join(html, p)) for k, p in [('site', site), ('images', 'images'), ('maps', 'maps')]}
    sizes['total'] = tree(html)
    beyond = sizes['site']['bytes'] + sizes['images']['bytes']
    out.update(samples=n, sizes=sizes, kb_per_sample_beyond_maps=round(beyond / n / 1024, 2))
    out['browser'] = browser(html, n)

    r = out
    print(f'\nsamples {n}')
    print(f'report plain        {r["report_plain"]["wall_s"]:9.2f} s')
    print(f'report --html       {r["report_html"]["wall_s"]:9.2f} s   ratio {r["report_html"]["wall_s"] / r["report_plain"]["wall_s"]:.2f}')
    print(f'browse (site only)  {r["browse"][0]["wall_s"]:9.2f} s, {r["browse"][1]["wall_s"]:.2f} s')
    print(f'{"size":18} {"MB":>9} {"KB/sample":>10} {"files":>7} {"on disk MB":>11}')
    for k in ('site', 'images', 'maps', 'total'):
        s = sizes[k]
        print(f'{k + ("/" + site if k == "site" else ""):18} {s["bytes"] / 2**20:9.1f} {s["bytes"] / n / 1024:10.2f} {s["files"]:7} {s["disk_bytes"] / 2**20:11.1f}')
    print(f'beyond raw maps     {r["kb_per_sample_beyond_maps"]:9.2f} KB/sample (budget 40)')
    b = r['browser']
    m = b['overview_median']
    print(f'overview usable     {m["page_ms"]:9.0f} ms in page, {m["wall_s"]:.2f} s wall (median of 3: '
          + ', '.join(str(o['page_ms']) for o in b['overview']) + f' ms; DOMContentLoaded {m["dom_content_loaded_ms"]:.0f} ms,'
          f' load {m["load_ms"]:.0f} ms; goal < 2000 ms)')
    print(f'filter mistakes     {b["filter_errors"]["page_ms"]:9.0f} ms in page, {b["filter_errors"]["wall_s"]:.2f} s wall '
          f'({b["filter_errors"]["mistakes"]} mistakes)')
    print(f'sample view         {b["sample_view"]["page_ms"]:9.0f} ms in page, {b["sample_view"]["wall_s"]:.2f} s wall '
          f'(#{b["sample_view"]["index"]}, {b["sample_view"]["maps"]} maps loaded)')
    if a.json:
        with open(a.json, 'w') as f:
            json.dump(out, f, indent=1)
        print(f'wrote {a.json}')


if __name__ == '__main__':
    main()
