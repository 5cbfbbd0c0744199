// A QR code as an inline SVG, drawn with the vendored qrcodegen
// (Project Nayuki's library, static/vendor/qrcodegen/).
//
// SVG, not canvas: it stays sharp at any zoom and when printed, and one
// <path> holds every dark module. The quiet zone (4 light modules around the
// symbol, which scanners need) is part of the picture, so the code still
// reads on a dark background or when cropped tight.

import qrcodegen from "../vendor/qrcodegen/qrcodegen.js";

const SVG = "http://www.w3.org/2000/svg";
export const QUIET_ZONE = 4;

/** The symbol for `text`: {size, version, getModule(x, y)} (error correction M or better). */
export function encode(text) {
  return qrcodegen.QrCode.encodeText(text, qrcodegen.QrCode.Ecc.MEDIUM);
}

/** An <svg> of `text`'s QR code; `label` is what a screen reader hears instead of the picture. */
export function qrSvg(text, { label } = {}) {
  const qr = encode(text);
  const side = qr.size + 2 * QUIET_ZONE;
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${side} ${side}`);
  svg.setAttribute("shape-rendering", "crispEdges");
  svg.setAttribute("class", "qr");
  svg.setAttribute("role", "img");
  if (label) svg.setAttribute("aria-label", label);
  // For tests and the curious: what was encoded, and how big the symbol is.
  svg.dataset.modules = String(qr.size);
  svg.dataset.version = String(qr.version);

  const background = document.createElementNS(SVG, "rect");
  background.setAttribute("width", String(side));
  background.setAttribute("height", String(side));
  background.setAttribute("fill", "#fff");

  let d = "";
  for (let y = 0; y < qr.size; y++) {
    for (let x = 0; x < qr.size; x++) {
      // Runs of dark modules along a row become one rectangle.
      if (!qr.getModule(x, y)) continue;
      let end = x;
      while (end + 1 < qr.size && qr.getModule(end + 1, y)) end++;
      d += `M${x + QUIET_ZONE} ${y + QUIET_ZONE}h${end - x + 1}v1h${-(end - x + 1)}z`;
      x = end;
    }
  }
  const modules = document.createElementNS(SVG, "path");
  modules.setAttribute("d", d);
  modules.setAttribute("fill", "#000");
  svg.append(background, modules);
  return svg;
}
