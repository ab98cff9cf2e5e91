/** A line chart on a canvas: several named series over one x axis, redrawn as points arrive. */

export interface Series {
  name: string;
  colour: string;
  points: [number, number][];
}

export class LineChart {
  readonly canvas: HTMLCanvasElement;
  private readonly series = new Map<string, Series>();

  constructor(label: string, private readonly xLabel = 'step') {
    this.canvas = document.createElement('canvas');
    this.canvas.className = 'chart';
    this.canvas.setAttribute('role', 'img');
    this.canvas.setAttribute('aria-label', label);
  }

  add(name: string, colour: string, x: number, y: number): void {
    if (!Number.isFinite(y)) return;
    const s = this.series.get(name) ?? { name, colour, points: [] };
    s.points.push([x, y]);
    this.series.set(name, s);
  }

  reset(): void {
    this.series.clear();
    this.draw();
  }

  draw(): void {
    const c = this.canvas;
    const ratio = window.devicePixelRatio || 1;
    const width = Math.max(200, c.clientWidth) * ratio;
    const height = Math.max(120, c.clientHeight) * ratio;
    if (c.width !== width || c.height !== height) {
      c.width = width;
      c.height = height;
    }
    const g = c.getContext('2d')!;
    g.clearRect(0, 0, width, height);
    const all = [...this.series.values()].flatMap((s) => s.points);
    const pad = { left: 48 * ratio, right: 12 * ratio, top: 22 * ratio, bottom: 24 * ratio };
    g.font = `${11 * ratio}px system-ui, sans-serif`;
    g.fillStyle = '#5b6470';
    if (all.length === 0) {
      g.fillText('no data yet', pad.left, height / 2);
      return;
    }
    const xs = all.map((p) => p[0]);
    const ys = all.map((p) => p[1]);
    const [x0, x1] = [Math.min(...xs), Math.max(...xs, Math.min(...xs) + 1)];
    const [y0, y1] = [Math.min(0, ...ys), Math.max(...ys) * 1.05 || 1];
    const px = (x: number) => pad.left + ((x - x0) / (x1 - x0)) * (width - pad.left - pad.right);
    const py = (y: number) => height - pad.bottom - ((y - y0) / (y1 - y0)) * (height - pad.top - pad.bottom);
    g.strokeStyle = '#d9dde3';
    g.lineWidth = ratio;
    for (let i = 0; i <= 4; i++) {
      const y = y0 + ((y1 - y0) * i) / 4;
      g.beginPath();
      g.moveTo(pad.left, py(y));
      g.lineTo(width - pad.right, py(y));
      g.stroke();
      g.fillText(y.toPrecision(3), 4 * ratio, py(y) + 4 * ratio);
    }
    g.fillText(`${this.xLabel} ${x0}–${x1}`, pad.left, height - 6 * ratio);
    let legend = pad.left;
    for (const s of this.series.values()) {
      g.strokeStyle = s.colour;
      g.lineWidth = 2 * ratio;
      g.beginPath();
      s.points.forEach(([x, y], i) => (i === 0 ? g.moveTo(px(x), py(y)) : g.lineTo(px(x), py(y))));
      g.stroke();
      g.fillStyle = s.colour;
      g.fillText(s.name, legend, 14 * ratio);
      legend += g.measureText(s.name).width + 16 * ratio;
    }
  }
}
