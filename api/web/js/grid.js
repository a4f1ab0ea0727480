// A virtualised grid: only the rows in view (plus one above and below) exist in the DOM, so a wall
// of 4,470 cameras costs as much as the ~50 tiles a screen shows. Tiles are keyed by item id and
// reused, so a tile keeps its picture while the list is re-sorted.

export class VirtualGrid {
  /**
   * @param {HTMLElement} scroller  the scrolling element (holds a .grid-sizer child)
   * @param {{create: () => HTMLElement, update: (el: HTMLElement, item: any, index: number) => void,
   *          onRange?: (items: any[]) => void}} hooks
   */
  constructor(scroller, { create, update, onRange = () => {} }) {
    this.scroller = scroller;
    this.sizer = scroller.querySelector(".grid-sizer");
    this.create = create;
    this.update = update;
    this.onRange = onRange;
    this.items = [];
    this.live = new Map(); // id -> element in use
    this.spare = [];
    this.minWidth = 280;
    this.gap = 10;
    this.infoPx = 52;
    this.cols = 1;
    this.rowH = 1;
    this.tileW = 1;
    this.tileH = 1;
    this.pending = false;
    scroller.addEventListener("scroll", () => this.schedule(), { passive: true });
    new ResizeObserver(() => this.layout()).observe(scroller);
  }

  setItems(items) {
    this.items = items;
    this.layout();
  }

  setMinWidth(px) {
    this.minWidth = px;
    this.layout();
  }

  /** Render on the next frame (scrolls and bursts of events come faster than frames). */
  schedule() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.render();
    });
  }

  layout() {
    const width = this.scroller.clientWidth;
    if (!width) return;
    const rem = parseFloat(getComputedStyle(document.documentElement).fontSize) || 16;
    this.infoPx = Math.round(3.1 * rem) + 4;
    this.cols = Math.max(1, Math.floor((width + this.gap) / (this.minWidth + this.gap)));
    this.tileW = (width - this.gap * (this.cols - 1)) / this.cols;
    this.tileH = Math.round((this.tileW * 9) / 16) + this.infoPx;
    this.rowH = this.tileH + this.gap;
    const rows = Math.ceil(this.items.length / this.cols);
    this.sizer.style.height = `${Math.max(0, rows * this.rowH - this.gap)}px`;
    this.render();
  }

  /** Index range [first, last) of the items in view. */
  range() {
    const top = this.scroller.scrollTop;
    const h = this.scroller.clientHeight;
    const firstRow = Math.max(0, Math.floor(top / this.rowH) - 1);
    const lastRow = Math.ceil((top + h) / this.rowH) + 1;
    return [firstRow * this.cols, Math.min(this.items.length, lastRow * this.cols)];
  }

  render() {
    const [first, last] = this.range();
    const wanted = new Set();
    for (let i = first; i < last; i++) wanted.add(this.items[i].id);
    // Tiles scrolled out of view go back to the pool first, so the ones coming in reuse them.
    for (const [id, el] of this.live) {
      if (wanted.has(id)) continue;
      el.hidden = true;
      delete el.dataset.id;
      this.spare.push(el);
      this.live.delete(id);
    }
    for (let i = first; i < last; i++) {
      const item = this.items[i];
      let el = this.live.get(item.id);
      if (!el) {
        el = this.spare.pop() || this.scroller.appendChild(this.create());
        this.live.set(item.id, el);
      }
      const row = Math.floor(i / this.cols);
      const col = i % this.cols;
      el.style.transform = `translate(${Math.round(col * (this.tileW + this.gap))}px, ${row * this.rowH}px)`;
      el.style.width = `${Math.floor(this.tileW)}px`;
      el.style.height = `${this.tileH}px`;
      el.hidden = false;
      this.update(el, item, i);
    }
    this.onRange(this.items.slice(first, last));
  }

  /** Back to the top (after the filters change, the old position means nothing). */
  top() {
    this.scroller.scrollTop = 0;
  }

  /** The element showing item `id`, if it is rendered. */
  element(id) {
    return this.live.get(id) || null;
  }

  /** Scroll so that item `index` is fully in view. */
  reveal(index) {
    const row = Math.floor(index / this.cols);
    const top = row * this.rowH;
    const s = this.scroller;
    if (top < s.scrollTop) s.scrollTop = top;
    else if (top + this.tileH > s.scrollTop + s.clientHeight) s.scrollTop = top + this.tileH - s.clientHeight;
    this.render();
  }

  /** How many whole rows fit on screen (for Page Up / Page Down). */
  rowsInView() {
    return Math.max(1, Math.floor(this.scroller.clientHeight / this.rowH));
  }
}
