#!/usr/bin/env python3
"""Browser test of the evidence browser written by `bagnet report --html` (docs/evidence-browser.md).

usage: python3 tests/browser/site_test.py OUTDIR [--screenshots DIR]

Opens file://OUTDIR/index.html in headless Chromium (Debian's chromium + chromedriver, python3-selenium)
and checks the site against the report it was built from: every expected value comes from
OUTDIR/summary.json and OUTDIR/reports.jsonl. Prints one line per check; exit 0 on success, 1 on failure.
"""
import argparse
import json
import os
import sys
import time

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:
    # pyenv/venv pythons do not see Debian's python3-selenium: retry with the system interpreter once
    if os.path.exists('/usr/bin/python3') and os.path.realpath(sys.executable) != os.path.realpath('/usr/bin/python3') \
            and not os.environ.get('SITE_TEST_REEXEC'):
        os.environ['SITE_TEST_REEXEC'] = '1'
        os.execv('/usr/bin/python3', ['/usr/bin/python3'] + sys.argv)
    print('FAIL: python3-selenium is not installed (apt-get install python3-selenium chromium chromium-driver)')
    sys.exit(1)

CHROMEDRIVER = '/usr/bin/chromedriver'
TIMEOUT = 20
MAX_PAGES = 12


class CheckFailed(Exception):
    pass


def check(cond, what, detail=''):
    if not cond:
        raise CheckFailed(f'{what}: {detail}' if detail else what)
    print(f'ok   {what}')


def load_expectations(outdir):
    with open(os.path.join(outdir, 'summary.json')) as f:
        summary = json.load(f)
    reports = []
    with open(os.path.join(outdir, 'reports.jsonl')) as f:
        for line in f:
            if line.strip():
                reports.append(json.loads(line))
    return summary, reports


def make_driver():
    opts = webdriver.ChromeOptions()
    opts.binary_location = '/usr/bin/chromium'
    opts.add_argument('--headless=new')
    for a in ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--window-size=1280,1000',
              '--hide-scrollbars', '--force-device-scale-factor=1']:
        opts.add_argument(a)
    opts.set_capability('goog:loggingPrefs', {'browser': 'ALL'})
    try:
        return webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    except Exception:
        # an older chromium without the new headless mode
        opts.arguments.remove('--headless=new')
        opts.add_argument('--headless')
        return webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)


class SiteTest:
    def __init__(self, outdir, shots):
        self.outdir = os.path.abspath(outdir)
        self.shots = shots
        self.summary, self.reports = load_expectations(self.outdir)
        self.d = make_driver()
        self.logs = []

    # ---- helpers ----
    def wait(self, fn, what):
        try:
            return WebDriverWait(self.d, TIMEOUT).until(lambda d: fn())
        except Exception:
            raise CheckFailed(f'timed out waiting for {what}')

    def q(self, testid, extra=''):
        return self.d.find_elements(By.CSS_SELECTOR, f'[data-testid="{testid}"]{extra}')

    def count(self):
        el = self.q('sample-count')
        return int(el[0].text.replace(',', '')) if el else None

    def click(self, el):
        self.d.execute_script('arguments[0].scrollIntoView({block: "center"});', el)
        el.click()

    def shot(self, name):
        if self.shots:
            os.makedirs(self.shots, exist_ok=True)
            path = os.path.join(self.shots, name + '.png')
            self.d.save_screenshot(path)
            print(f'     screenshot {path}')

    def full_shot(self, name, height):
        """A taller window so that a whole section fits in one picture."""
        if self.shots:
            self.d.set_window_size(1280, height)
            self.shot(name)
            self.d.set_window_size(1280, 1000)

    def collect_logs(self):
        self.logs += self.d.get_log('browser')

    def listed_indices(self, expected):
        """Indices of the listed samples over all pages (follows the pager's 'next' button). Past
        MAX_PAGES pages only the first page is compared (with the expected list in index order) and the
        count checked separately, so that a 50,000-sample report stays quick to test."""
        first_page = [int(e.get_attribute('data-index')) for e in self.q('sample')]
        if len(expected) > MAX_PAGES * max(1, len(first_page)):
            print(f'     {len(expected)} samples: comparing the first page only')
            return first_page, sorted(expected)[:len(first_page)]
        seen = []
        for _ in range(10000):
            seen += [int(e.get_attribute('data-index')) for e in self.q('sample')]
            nxt = self.d.find_elements(By.CSS_SELECTOR, '#pager-top button[aria-label="next page"]')
            if not nxt or not nxt[0].is_enabled():
                return seen, sorted(expected)
            first = self.q('sample')[0].get_attribute('data-index')
            self.click(nxt[0])
            self.wait(lambda: self.q('sample') and self.q('sample')[0].get_attribute('data-index') != first, 'the next page')
        return seen

    def all_images_loaded(self, root_css):
        return self.d.execute_script(
            'return [...document.querySelectorAll(arguments[0] + " img")]'
            '.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute("src"));', root_css)

    # ---- checks ----
    def run(self):
        reports, summary = self.reports, self.summary
        mistakes = sorted(r['image']['index'] for r in reports if r['decision'] and not r['decision']['correct'])
        t0 = time.time()
        self.d.get('file://' + os.path.join(self.outdir, 'index.html'))
        self.wait(lambda: self.q('sample-count'), 'the sample count')
        print(f'     page ready after {time.time() - t0:.2f} s')
        err = self.d.find_elements(By.ID, 'load-error')
        check(not err or not err[0].is_displayed(), 'the data scripts loaded', err[0].text if err else '')
        check(self.count() == len(reports), 'sample-count equals the number of reports',
              f'{self.count()} != {len(reports)}')
        n_cells = len(summary_classes(summary, reports))
        cells = self.q('confusion-cell')
        check(len(cells) > 0 and len(cells) <= n_cells * n_cells, 'the confusion matrix has cells', str(len(cells)))
        self.shot('overview')

        # mistakes only
        self.click(self.q('filter-errors')[0])
        self.wait(lambda: self.count() == len(mistakes), 'the mistake count')
        check(self.count() == len(mistakes), 'filter-errors: sample-count equals the reports with decision.correct == false')
        self.shot('error-list')
        listed, want = self.listed_indices(mistakes)
        check(sorted(listed) == want, 'filter-errors lists exactly the mistakes (all pages)',
              f'{len(listed)} listed, {len(mistakes)} expected')

        # the most frequent confusion pair, from summary.json
        conf = summary.get('confusions') or []
        # the most frequent pair (summary order breaks ties) that the matrix shows: an incomplete matrix
        # (confusion.complete false) shows only the classes with the most mistakes
        conf = [c for c in sorted(conf, key=lambda c: -c['count'])
                if self.q('confusion-cell', f'[data-true="{c["true_class"]}"][data-pred="{c["predicted"]}"]')]
        if conf:
            top = conf[0]
            t, p = top['true_class'], top['predicted']
            cell = self.q('confusion-cell', f'[data-true="{t}"][data-pred="{p}"]')
            check(len(cell) == 1, f'a confusion cell for {t} -> {p} exists')
            self.click(cell[0])
            expected = sorted(r['image']['index'] for r in reports if r['decision']
                              and r['decision']['true_class'] == t and r['decision']['predicted'] == p)
            self.wait(lambda: self.count() == len(expected), 'the pair count')
            check(self.count() == top['count'] == len(expected), f'confusion cell {t} -> {p} counts {len(expected)}')
            listed, want = self.listed_indices(expected)
            check(sorted(listed) == want, 'the confusion cell lists exactly that pair')
            for e in self.q('sample'):
                if (int(e.get_attribute('data-true')), int(e.get_attribute('data-pred'))) != (t, p):
                    raise CheckFailed('a listed card has another true/pred')
            self.d.get('file://' + os.path.join(self.outdir, 'index.html') + '#view=errors')
            self.wait(lambda: self.count() == len(mistakes), 'the error list after reload')

        if not mistakes:
            print('     no mistakes in this report: sample-view checks skipped')
        else:
            self.check_sample_view(mistakes)

        # no request left the machine
        # resource timing, plus every URL the DOM refers to (Chromium may not time file:// loads)
        names = self.d.execute_script(
            "const urls = performance.getEntriesByType('resource').map(e => e.name).concat([location.href]);"
            "for (const el of document.querySelectorAll('[src], link[href]')) urls.push(el.src || el.href);"
            "for (const el of document.querySelectorAll('*')) {"
            "  const m = getComputedStyle(el).backgroundImage.match(/url\\(\"?([^\")]+)/); if (m) urls.push(m[1]); }"
            "return urls;")
        remote = [n for n in names if not (n.startswith('file://') or n.startswith('data:') or n.startswith('blob:'))]
        check(not remote, f'all {len(names)} resources are local files', ', '.join(remote[:5]))
        csp = self.d.execute_script(
            'const m = document.querySelector(\'meta[http-equiv="Content-Security-Policy"]\'); return m && m.content;')
        check(bool(csp) and "default-src 'none'" in csp and 'http' not in csp,
              'index.html carries a CSP that allows no remote origin', str(csp))

        # atlas
        atlas = self.d.find_element(By.ID, 'atlas-sec')
        self.d.execute_script('arguments[0].scrollIntoView({block: "start"});', atlas)
        time.sleep(0.3)
        self.shot('atlas')

        self.collect_logs()
        bad = [l for l in self.logs if l.get('level') in ('SEVERE', 'WARNING')]
        check(not bad, 'no console errors or warnings', '; '.join(l.get('message', '') for l in bad[:5]))

    def check_sample_view(self, mistakes):
        # open the first mistake of the error list by clicking its card
        first = self.q('sample')[0]
        index = int(first.get_attribute('data-index'))
        check(index in mistakes, 'the first card of the error list is a mistake')
        self.click(first)
        view_css = '#sample-view'
        self.wait(lambda: self.d.find_elements(By.CSS_SELECTOR, view_css + ' [data-testid="map"]'), 'the sample view maps')
        check(f'sample={index}' in self.d.current_url, 'the sample view is linked from the hash', self.d.current_url)
        roles = {e.get_attribute('data-role') for e in self.q('map')}
        check({'predicted', 'true', 'margin'} <= roles, 'maps with roles predicted, true and margin', str(sorted(roles)))
        rep = next(r for r in self.reports if r['image']['index'] == index)
        pmap = self.q('map', '[data-role="predicted"]')[0]
        check(int(pmap.get_attribute('data-class')) == rep['decision']['predicted'], 'the predicted map is of the predicted class')
        tmap = self.q('map', '[data-role="true"]')[0]
        check(int(tmap.get_attribute('data-class')) == rep['decision']['true_class'], 'the true map is of the true class')
        self.wait(lambda: not self.all_images_loaded(view_css), 'the sample view images')
        check(not self.all_images_loaded(view_css), 'every image in the sample view loaded')
        alts = self.d.execute_script('return [...document.querySelectorAll("#sample-view img")].filter(i => !i.alt).length;')
        check(alts == 0, 'every image in the sample view has alt text')
        time.sleep(0.2)
        self.shot('sample-view')

        # keyboard: next mistake in the current list order (index order here)
        body = self.d.find_element(By.TAG_NAME, 'body')
        pos = mistakes.index(index)
        if pos + 1 < len(mistakes):
            body.send_keys('n')
            nxt = mistakes[pos + 1]
            self.wait(lambda: f'sample={nxt}' in self.d.current_url, 'the next mistake after pressing n')
            self.wait(lambda: self.d.find_elements(By.CSS_SELECTOR, '#sv-title') and
                      self.d.find_element(By.ID, 'sv-title').text.startswith(f'#{nxt}'), 'the next mistake view')
            check(True, f'key n goes to the next mistake (#{index} -> #{nxt})')
            body.send_keys(Keys.ARROW_LEFT)
            self.wait(lambda: f'sample={index}' in self.d.current_url, 'the previous mistake after pressing ←')
            check(True, 'key ← goes back to the previous mistake')
        body.send_keys(Keys.ESCAPE)
        self.wait(lambda: not self.d.find_element(By.ID, 'sample-view').is_displayed(), 'the view to close')
        check('sample=' not in self.d.current_url, 'Escape closes the sample view')


def summary_classes(summary, reports):
    n = 0
    for r in reports[:1]:
        n = r['model']['num_classes']
    return range(n or len(summary.get('per_class', [])))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('outdir')
    ap.add_argument('--screenshots', metavar='DIR')
    a = ap.parse_args()
    if not os.path.exists(os.path.join(a.outdir, 'index.html')):
        print(f'FAIL: {a.outdir}/index.html does not exist (bagnet report ... -o OUTDIR --html)')
        return 1
    t = None
    try:
        t = SiteTest(a.outdir, a.screenshots)
        t.run()
    except CheckFailed as e:
        print(f'FAIL {e}')
        if t:
            t.shot('failure')
            try:
                t.collect_logs()
                for l in t.logs:
                    print('     console:', l.get('level'), l.get('message'))
            except Exception:
                pass
        return 1
    finally:
        if t:
            t.d.quit()
    print('all checks passed')
    return 0


if __name__ == '__main__':
    sys.exit(main())
