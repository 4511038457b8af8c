// Small SVG charts (no library): a trend per team with bars for cases registered and lines for
// the closure and on-time rates. Every bar is a link to the cases behind it.
import { t } from './i18n.js';
import { svg } from './ui.js';

const W = 300;
const H = 130;
const PAD = { l: 30, r: 30, t: 10, b: 22 };

export function trendChart(points, { onBar, label } = {}) {
  const n = points.length;
  const iw = W - PAD.l - PAD.r;
  const ih = H - PAD.t - PAD.b;
  const maxCount = Math.max(1, ...points.map((p) => p.registered || 0));
  const bw = n ? iw / n : iw;
  const x = (i) => PAD.l + i * bw + bw / 2;
  const yRate = (v) => PAD.t + ih - v * ih;
  const yCount = (v) => PAD.t + ih - (v / maxCount) * ih;
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'trend', role: 'img', 'aria-label': label || '' });
  // axes: rates on the left (0–100%), counts on the right
  for (const v of [0, 0.5, 1]) {
    root.append(svg('line', { x1: PAD.l, x2: W - PAD.r, y1: yRate(v), y2: yRate(v), class: 'grid-line' }));
    root.append(svg('text', { x: PAD.l - 4, y: yRate(v) + 3, class: 'axis', 'text-anchor': 'end' }, `${v * 100}%`));
  }
  root.append(svg('text', { x: W - PAD.r + 4, y: PAD.t + 6, class: 'axis' }, String(maxCount)));
  points.forEach((p, i) => {
    const hgt = ih - (yCount(p.registered || 0) - PAD.t);
    const bar = svg('rect', { x: x(i) - bw * 0.32, y: yCount(p.registered || 0), width: bw * 0.64, height: Math.max(0, hgt), class: 'bar',
      tabindex: onBar ? '0' : null, 'data-testid': 'trend-bar' });
    bar.append(svg('title', {}, `${p.label}: ${t('kpi.registered')} ${p.registered || 0}, ${t('kpi.closure_rate')} ${pct(p.closure_rate)}, ${t('kpi.on_time_rate')} ${pct(p.on_time_rate)}`));
    if (onBar) {
      bar.addEventListener('click', () => onBar(p));
      bar.addEventListener('keydown', (e) => { if (e.key === 'Enter') onBar(p); });
    }
    root.append(bar);
  });
  for (const [key, cls] of [['closure_rate', 'line-a'], ['on_time_rate', 'line-b']]) {
    const pts = points.map((p, i) => (p[key] == null ? null : [x(i), yRate(p[key])]));
    let d = '';
    let pen = false;
    for (const q of pts) {
      if (!q) { pen = false; continue; }
      d += `${pen ? 'L' : 'M'}${q[0].toFixed(1)} ${q[1].toFixed(1)}`;
      pen = true;
    }
    if (d) root.append(svg('path', { d, class: cls }));
    pts.forEach((q) => { if (q) root.append(svg('circle', { cx: q[0], cy: q[1], r: 2.2, class: cls })); });
  }
  if (n) {
    root.append(svg('text', { x: PAD.l, y: H - 6, class: 'axis' }, points[0].label));
    if (n > 1) root.append(svg('text', { x: W - PAD.r, y: H - 6, class: 'axis', 'text-anchor': 'end' }, points[n - 1].label));
  }
  return root;
}

const pct = (v) => (v == null ? '—' : `${(v * 100).toFixed(0)}%`);
