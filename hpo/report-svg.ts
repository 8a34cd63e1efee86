/**
 * Chart primitives for the HTML report, emitted as SVG text on the server side so the page needs
 * no script and no library at view time: linear scales with "nice" ticks, axes, and escaping.
 */

/** Escapes text for HTML/SVG element content and double- or single-quoted attributes. */
export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

interface Domain {
  min: number;
  max: number;
}

/** Smallest and largest finite values, or undefined when there are none. */
export function extent(values: Iterable<number | null | undefined>): Domain | undefined {
  let min = Infinity;
  let max = -Infinity;
  for (const v of values) {
    if (typeof v !== 'number' || !Number.isFinite(v)) continue;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return min <= max ? { min, max } : undefined;
}

interface Ticks {
  /** The axis domain, widened to whole steps so the first and last tick sit on the frame. */
  domain: Domain;
  values: number[];
  decimals: number;
}

/** About `count` ticks at 1, 2 or 5 times a power of ten covering `d`. */
export function niceTicks(d: Domain | undefined, count = 5): Ticks {
  let { min, max } = d ?? { min: 0, max: 1 };
  if (max === min) {
    // One value (a single point, or all trials equal): give it room instead of dividing by zero.
    const pad = Math.abs(min) * 0.1 || 1;
    min -= pad;
    max += pad;
  }
  const raw = (max - min) / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? 10 * power;
  const lo = round(Math.floor(min / step + 1e-9) * step, step);
  const hi = round(Math.ceil(max / step - 1e-9) * step, step);
  const values: number[] = [];
  for (let i = 0; lo + i * step <= hi + step * 1e-6; i++) values.push(round(lo + i * step, step));
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  return { domain: { min: lo, max: hi }, values, decimals };
}

/** Drops float noise (0.30000000000000004) so labels and positions are exact. */
function round(v: number, step: number): number {
  const digits = Math.max(0, -Math.floor(Math.log10(step)) + 2);
  return Number(v.toFixed(Math.min(digits, 15)));
}

interface Frame {
  width: number;
  height: number;
  left: number;
  right: number;
  top: number;
  bottom: number;
}

// Drawn about 1:1 at a two-column layout of a laptop screen, so 12px text stays readable.
export const FRAME: Frame = { width: 580, height: 320, left: 58, right: 30, top: 12, bottom: 44 };

/** Widens a domain by `fraction` on both sides so points at the extremes do not sit on the frame; never below 0 when the data is not. */
export function padded(d: Domain | undefined, fraction = 0.04): Domain | undefined {
  if (!d || d.max === d.min) return d;
  const pad = (d.max - d.min) * fraction;
  return { min: d.min >= 0 ? Math.max(0, d.min - pad) : d.min - pad, max: d.max + pad };
}

/** Maps data to pixels inside the frame. */
export class Plot {
  constructor(
    readonly frame: Frame,
    readonly x: Ticks,
    readonly y: Ticks,
  ) {}

  px(v: number): number {
    const { left, right, width } = this.frame;
    const { min, max } = this.x.domain;
    return left + ((v - min) / (max - min)) * (width - left - right);
  }

  py(v: number): number {
    const { top, bottom, height } = this.frame;
    const { min, max } = this.y.domain;
    return height - bottom - ((v - min) / (max - min)) * (height - top - bottom);
  }

  /** Grid lines, tick labels and axis titles. */
  axes(xTitle: string, yTitle: string): string {
    const f = this.frame;
    const x0 = f.left;
    const x1 = f.width - f.right;
    const y0 = f.height - f.bottom;
    const y1 = f.top;
    const parts: string[] = [];
    for (const v of this.x.values) {
      const x = fmt(this.px(v));
      parts.push(`<line class="grid" x1="${x}" y1="${y1}" x2="${x}" y2="${y0}"/>`);
      parts.push(`<text class="tick" data-axis="x" x="${x}" y="${y0 + 16}" text-anchor="middle">${v.toFixed(this.x.decimals)}</text>`);
    }
    for (const v of this.y.values) {
      const y = fmt(this.py(v));
      parts.push(`<line class="grid" x1="${x0}" y1="${y}" x2="${x1}" y2="${y}"/>`);
      parts.push(`<text class="tick" data-axis="y" x="${x0 - 6}" y="${y}" dy="0.32em" text-anchor="end">${v.toFixed(this.y.decimals)}</text>`);
    }
    parts.push(`<rect class="frame" x="${x0}" y="${y1}" width="${x1 - x0}" height="${y0 - y1}"/>`);
    parts.push(`<text class="axis-title" x="${(x0 + x1) / 2}" y="${f.height - 8}" text-anchor="middle">${esc(xTitle)}</text>`);
    parts.push(`<text class="axis-title" transform="translate(14 ${(y0 + y1) / 2}) rotate(-90)" text-anchor="middle">${esc(yTitle)}</text>`);
    return parts.join('');
  }
}

/** Pixel coordinates with one decimal: enough for the eye, short in the file. */
export function fmt(v: number): string {
  return (Math.round(v * 10) / 10).toString();
}
