#!/usr/bin/env python3
"""Browser test of the page written by `bagnet diff -o OUTDIR --html` (docs/diff.md).

usage: python3 tests/browser/diff_page_test.py OUTDIR [--screenshots DIR]

Opens file://OUTDIR/index.html in headless Chromium (Debian's chromium + chromedriver, python3-selenium)
and checks it against OUTDIR/diff.json and OUTDIR/changes.jsonl: the counts, one card per changed
decision in its section, every figure loaded, class names shown as text (never as markup), no console
errors. Prints one line per check; exit 0 on success, 1 on failure.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from site_test import TIMEOUT, By, CheckFailed, WebDriverWait, check, make_driver  # noqa: E402  (selenium import and driver setup)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('outdir')
    ap.add_argument('--screenshots')
    args = ap.parse_args()
    outdir = os.path.abspath(args.outdir)
    with open(os.path.join(outdir, 'diff.json')) as f:
        diff = json.load(f)
    with open(os.path.join(outdir, 'changes.jsonl')) as f:
        changes = [json.loads(line) for line in f if line.strip()]
    d = make_driver()
    try:
        d.get('file://' + os.path.join(outdir, 'index.html'))
        body = d.find_element(By.TAG_NAME, 'body').text
        check(d.title.startswith('bagnet diff'), 'page title', d.title)
        dec = diff['decisions']
        for section, title in [('fixed', 'Mistakes fixed'), ('introduced', 'Mistakes introduced'),
                               ('other_mistake', 'Wrong both times, another class'), ('changed', 'Changed (unlabelled)')]:
            count = dec['changed_unlabelled' if section == 'changed' else section]
            heading = d.find_element(By.CSS_SELECTOR, f'#{section} h2').text
            check(heading == f'{title} ({count})', f'section {section} heading', heading)
            cards = d.find_elements(By.CSS_SELECTOR, f'#{section} .change')
            expected = [c['index'] for c in changes if c['change'] == section]
            shown = [int(c.get_attribute('id')[1:]) for c in cards]
            check(shown == expected, f'section {section}: one card per changed decision, in dataset order',
                  f'{len(shown)} cards, {len(expected)} expected')
        rows = d.find_elements(By.CSS_SELECTOR, '#classes table tr')
        check(len(rows) == len(diff['per_class']) + 1, 'per-class table: one row per class', str(len(rows)))
        for c in diff['per_class']:
            check(c['name'] in body, f'class name shown as text: {c["name"]!r}')
        check(not d.find_elements(By.CSS_SELECTOR, 'main img:not([loading])'), 'no image element from the data')
        figures = [c for c in changes if c['figure']]
        imgs = d.find_elements(By.CSS_SELECTOR, '.change img')
        check(len(imgs) == len(figures), 'one picture per figure written', f'{len(imgs)} vs {len(figures)}')
        # Lazy images load once they are in view in a rendered frame: scroll to each as a reader
        # would and wait for it (a broken one never completes with a width: a failure, not a hang).
        broken = []
        for img in imgs:
            d.execute_script('arguments[0].scrollIntoView({block: "center"});', img)
            try:
                WebDriverWait(d, TIMEOUT).until(lambda drv: drv.execute_script(
                    'return arguments[0].complete && arguments[0].naturalWidth > 0;', img))
            except Exception:
                broken.append(img.get_attribute('src'))
        check(not broken, 'every figure loaded', f'not loaded after {TIMEOUT} s: {broken[:3]}')
        d.execute_script('window.scrollTo(0, 0);')
        errors = [e for e in d.get_log('browser') if e['level'] == 'SEVERE']
        check(not errors, 'no console errors', str(errors[:3]))
        if args.screenshots:
            os.makedirs(args.screenshots, exist_ok=True)
            d.set_window_size(1280, 1800)
            d.save_screenshot(os.path.join(args.screenshots, 'diff-top.png'))
            first = d.find_elements(By.CSS_SELECTOR, '.change')
            if first:
                d.execute_script('arguments[0].scrollIntoView({block: "start"});', first[0])
                d.save_screenshot(os.path.join(args.screenshots, 'diff-cards.png'))
        print('PASS')
        return 0
    except CheckFailed as e:
        print(f'FAIL {e}')
        return 1
    finally:
        d.quit()


if __name__ == '__main__':
    sys.exit(main())
