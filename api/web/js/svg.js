// Small helpers for drawing the timeline in SVG (no library: a few rects and lines).

const NS = "http://www.w3.org/2000/svg";

/** An SVG element with attributes; `data` keys become data-* attributes. */
export function el(name, attrs = {}, data = {}) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  for (const [k, v] of Object.entries(data)) e.dataset[k] = String(v);
  return e;
}

export function clear(svg) {
  while (svg.lastChild) svg.lastChild.remove();
}

/** A hatch pattern for gaps, once per SVG. */
export function gapPattern(svg, id) {
  const defs = el("defs");
  const p = el("pattern", { id, width: 8, height: 8, patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" });
  p.append(el("rect", { width: 8, height: 8, fill: "#3a1a1e" }), el("rect", { width: 3, height: 8, fill: "#a8353c" }));
  defs.append(p);
  svg.append(defs);
}

const STEPS_S = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600];

/** A tick step (s) giving at least `minPx` between ticks on an axis of `widthPx` covering `spanS`. */
export function tickStep(spanS, widthPx, minPx = 90) {
  for (const s of STEPS_S) if ((s / spanS) * widthPx >= minPx) return s;
  return STEPS_S[STEPS_S.length - 1];
}
