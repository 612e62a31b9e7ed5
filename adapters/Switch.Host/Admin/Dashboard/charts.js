// A small line chart on a canvas: one series of [timeMs, value] over a fixed time span ending now.
// Own code, no library: the dashboard ships everything it needs.
"use strict";

const Charts = (() => {
  const PAD_LEFT = 44, PAD_RIGHT = 6, PAD_TOP = 8, PAD_BOTTOM = 16;

  // Sizes the backing store to the element's CSS size (sharp lines on high-DPI screens) and returns the context.
  function context(canvas) {
    const ratio = window.devicePixelRatio || 1;
    const width = Math.max(1, Math.round(canvas.clientWidth || canvas.width));
    const height = Math.max(1, Math.round(canvas.clientHeight || canvas.height));
    if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    return { ctx, width, height };
  }

  function label(value) {
    if (value >= 1000) return (value / 1000).toFixed(value >= 10000 ? 0 : 1) + "k";
    if (value >= 100 || Number.isInteger(value)) return value.toFixed(0);
    return value.toFixed(1);
  }

  // points: [[timeMs, value], ...] oldest first; options: { spanMs, nowMs, color, min, max (optional fixed scale),
  // lines (optional): [{ name, points, color }] drawn thin under the main series, e.g. one per endpoint }.
  function draw(canvas, points, options) {
    const { ctx, width, height } = context(canvas);
    ctx.clearRect(0, 0, width, height);
    const plotW = width - PAD_LEFT - PAD_RIGHT, plotH = height - PAD_TOP - PAD_BOTTOM;
    const t0 = options.nowMs - options.spanMs;
    const visible = points.filter(p => p[0] >= t0);
    canvas.points = visible; // what is drawn, for a test or a curious operator's console
    const lines = (options.lines || []).map(l => ({ name: l.name, color: l.color, points: l.points.filter(p => p[0] >= t0) }));
    canvas.lines = lines;
    let min = options.min ?? 0;
    let max = options.max ?? Math.max(1, ...visible.map(p => p[1]), ...lines.flatMap(l => l.points.map(p => p[1])));
    if (options.max === undefined) max *= 1.1; // headroom so the line never sits on the frame
    if (max <= min) max = min + 1;

    ctx.font = "11px system-ui, sans-serif";
    ctx.fillStyle = "#6b7480";
    ctx.strokeStyle = "#e3e6ea";
    ctx.lineWidth = 1;
    ctx.textBaseline = "middle";
    ctx.textAlign = "right";
    for (let i = 0; i <= 2; i++) {
      const v = min + (max - min) * i / 2, y = PAD_TOP + plotH - plotH * i / 2;
      ctx.beginPath();
      ctx.moveTo(PAD_LEFT, y + 0.5);
      ctx.lineTo(PAD_LEFT + plotW, y + 0.5);
      ctx.stroke();
      ctx.fillText(label(v), PAD_LEFT - 4, y);
    }
    ctx.textAlign = "left";
    ctx.textBaseline = "alphabetic";
    ctx.fillText("-" + Math.round(options.spanMs / 60000) + " min", PAD_LEFT, height - 3);
    ctx.textAlign = "right";
    ctx.fillText("now", width - PAD_RIGHT, height - 3);

    if (visible.length === 0) {
      ctx.textAlign = "center";
      ctx.fillText("no data yet", PAD_LEFT + plotW / 2, PAD_TOP + plotH / 2);
      return;
    }
    const x = t => PAD_LEFT + plotW * (t - t0) / options.spanMs;
    const y = v => PAD_TOP + plotH - plotH * (Math.min(Math.max(v, min), max) - min) / (max - min);
    const stroke = (series, color, width) => {
      ctx.strokeStyle = color;
      ctx.lineWidth = width;
      ctx.beginPath();
      series.forEach((p, i) => (i === 0 ? ctx.moveTo(x(p[0]), y(p[1])) : ctx.lineTo(x(p[0]), y(p[1]))));
      ctx.stroke();
    };
    for (const line of lines) stroke(line.points, line.color, 1);
    stroke(visible, options.color, 1.5);
    const last = visible[visible.length - 1];
    ctx.fillStyle = options.color;
    ctx.beginPath();
    ctx.arc(x(last[0]), y(last[1]), 2.5, 0, 2 * Math.PI);
    ctx.fill();
  }

  return { draw };
})();
