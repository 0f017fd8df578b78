"""A report people look at: one self-contained HTML file comparing masks before and after refinement.

``write_report(images_dir, before_dir, after_dir, out, gt_dir=None)`` writes a page with a table of the
images (sortable by clicking a column header: by gain or loss, by name, by each metric) and, per image,
a before/after view: the image with the mask's boundary drawn (before: orange, after: green, ground truth:
red), and a toggle that switches between the two. Images are embedded (JPEG, at most 720 px wide), so
the file can be mailed or opened offline; no script or style is loaded from anywhere else.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import cv2
import numpy as np

from bprefine.data.images import atomic_path, read_image, read_mask
from bprefine.metrics import boundary_iou, mask_iou

MAX_WIDTH = 720
BEFORE, AFTER, GT = (255, 140, 0), (0, 200, 80), (230, 30, 30)


def _contour_overlay(image: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int],
                     gt: np.ndarray | None) -> np.ndarray:
    out = image.copy()
    if gt is not None:
        contours, _ = cv2.findContours(gt.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(out, contours, -1, GT, 1)
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(out, contours, -1, colour, 2)
    return out


def _data_url(image: np.ndarray) -> str:
    h, w = image.shape[:2]
    if w > MAX_WIDTH:
        image = cv2.resize(image, (MAX_WIDTH, round(h * MAX_WIDTH / w)), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise ValueError("cannot encode a report image")
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


def image_rows(images_dir: Path, before_dir: Path, after_dir: Path, gt_dir: Path | None) -> list[dict]:
    """One row per image: name, metrics (when ground truth is given) and the two embedded pictures."""
    from bprefine.data.folders import check_same_size, mask_pairs

    rows = []
    for image_path, before_path in mask_pairs(images_dir, before_dir):
        after_path = after_dir / before_path.name
        image, before, after = read_image(image_path), read_mask(before_path), read_mask(after_path)
        gt = None
        if gt_dir is not None:
            gt = read_mask(gt_dir / before_path.name)
            check_same_size(image, gt, image_path, gt_dir / before_path.name)
        for m, p in ((before, before_path), (after, after_path)):
            check_same_size(image, m, image_path, p)
        row = {"name": image_path.name, "changed_px": int((before != after).sum()),
               "before": _data_url(_contour_overlay(image, before, BEFORE, gt)),
               "after": _data_url(_contour_overlay(image, after, AFTER, gt))}
        if gt is not None:
            b, a = mask_iou(before, gt), mask_iou(after, gt)
            bb, ba = boundary_iou(before, gt), boundary_iou(after, gt)
            row |= {"iou_before": b, "iou_after": a, "biou_before": bb, "biou_after": ba, "gain": ba - bb}
        rows.append(row)
    return rows


_STYLE = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222}
table{border-collapse:collapse;margin-bottom:24px}th,td{padding:4px 10px;border-bottom:1px solid #ddd;text-align:right}
th{cursor:pointer;background:#f4f4f4;user-select:none}th:first-child,td:first-child{text-align:left}
tr.sel{background:#eef6ff}tr{cursor:pointer}.gain{color:#080}.loss{color:#b00}
#view img{max-width:100%;border:1px solid #ccc}#toggle{font-size:16px;padding:6px 14px;margin:8px 0}
.legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:middle}
"""

_SCRIPT = """
const rows = JSON.parse(document.getElementById('data').textContent);
let current = 0, showing = 'after', sortKey = null, ascending = true;
function fmt(v){return (v===undefined||v===null)?'':(typeof v==='number'&&!Number.isInteger(v)?(100*v).toFixed(2):String(v));}
function render(){
  const body = document.querySelector('#images tbody'); body.innerHTML = '';
  rows.forEach((r, i) => {
    const tr = document.createElement('tr'); tr.dataset.index = i; tr.dataset.name = r.name;
    if (i === current) tr.className = 'sel';
    COLUMNS.forEach(c => {const td = document.createElement('td'); td.textContent = fmt(r[c]);
      if (c === 'gain') td.className = r.gain > 0 ? 'gain' : (r.gain < 0 ? 'loss' : ''); tr.appendChild(td);});
    tr.addEventListener('click', () => {current = i; render(); show();});
    body.appendChild(tr);
  });
}
function show(){
  const r = rows[current];
  document.getElementById('picture').src = r[showing];
  document.getElementById('picture').dataset.state = showing;
  document.getElementById('title').textContent = r.name + ': ' + showing;
  document.getElementById('toggle').textContent = 'show ' + (showing === 'after' ? 'before' : 'after');
}
function sortBy(key){
  const name = rows[current].name;
  ascending = (sortKey === key) ? !ascending : (key === 'name');
  sortKey = key;
  rows.sort((a, b) => {const x = a[key], y = b[key]; const r = (x < y) ? -1 : (x > y ? 1 : 0); return ascending ? r : -r;});
  current = rows.findIndex(r => r.name === name);
  render();
}
document.querySelectorAll('#images th').forEach(th => th.addEventListener('click', () => sortBy(th.dataset.key)));
document.getElementById('toggle').addEventListener('click', () => {showing = showing === 'after' ? 'before' : 'after'; show();});
render(); show();
"""


def render_html(rows: list[dict], *, title: str = "bprefine: before and after refinement") -> str:
    """The page for ``rows`` (see ``image_rows``)."""
    has_gt = bool(rows) and "gain" in rows[0]
    columns = ["name", "changed_px"] + (["iou_before", "iou_after", "biou_before", "biou_after", "gain"] if has_gt else [])
    labels = {"name": "image", "changed_px": "pixels changed", "iou_before": "IoU before", "iou_after": "IoU after",
              "biou_before": "boundary IoU before", "biou_after": "boundary IoU after", "gain": "boundary IoU gain"}
    head = "".join(f'<th data-key="{c}">{html.escape(labels[c])}</th>' for c in columns)
    summary = ""
    if has_gt:
        gains = np.array([r["gain"] for r in rows])
        summary = (f"<p>{len(rows)} images; mean boundary IoU {100 * np.mean([r['biou_before'] for r in rows]):.2f} "
                   f"&rarr; {100 * np.mean([r['biou_after'] for r in rows]):.2f}; {int((gains > 0).sum())} better, "
                   f"{int((gains < 0).sum())} worse. Metrics in percent. Click a header to sort, a row to view it.</p>")
    data = json.dumps(rows).replace("</", "<\\/")
    legend = ('<p class="legend">boundaries:<span style="background:rgb%s"></span>before'
              '<span style="background:rgb%s"></span>after<span style="background:rgb%s"></span>ground truth</p>'
              % (BEFORE, AFTER, GT))
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>{summary}"
            f"<table id='images'><thead><tr>{head}</tr></thead><tbody></tbody></table>"
            f"<div id='view'><h2 id='title'></h2><button id='toggle'></button>{legend}<img id='picture' alt='mask view'></div>"
            f"<script type='application/json' id='data'>{data}</script>"
            f"<script>const COLUMNS = {json.dumps(columns)};{_SCRIPT}</script></body></html>")


def write_report(images_dir: str | Path, before_dir: str | Path, after_dir: str | Path, out: str | Path,
                 gt_dir: str | Path | None = None) -> int:
    """Write the HTML report atomically; returns the number of images in it."""
    rows = image_rows(Path(images_dir), Path(before_dir), Path(after_dir), Path(gt_dir) if gt_dir else None)
    with atomic_path(out) as tmp:
        tmp.write_text(render_html(rows), encoding="utf-8")
    return len(rows)
