/* The explorer's backend without a server, for the page of `latentjax explore RUN --static out.html`.

   _static.py embeds the run's data as JSON in <script type="application/json" id="lj-static-data">
   (float arrays as base64 little-endian float32), then this file, then explore.js. This file defines
   `LJStatic` (the maths) and `EXPLORE_BACKEND` (the methods of explore.js's live backend, see there).
   Decoding (data.decoder.mode): "mlp": the decoder's weights are embedded and its forward pass runs
   here, equal to models.decode (dense layers, the run's activation: relu, swish, elu or gelu in
   jax.nn.gelu's default tanh form; a dense output layer; sigmoid); "grid": (conv and other decoders)
   a map position shows the nearest of a grid of decodes computed when the page was written, and other
   latents (paths, edits) need the server. The 2-D -> latent inverse is explore/_inverse.py's (the
   inverse-distance-weighted mean of the k nearest map points' latents). Geodesics need the server. */
(function (global) {
  "use strict";

  function f32(b64) {
    const bin = atob(b64);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return new Float32Array(bytes.buffer);
  }

  const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
  const ACTIVATIONS = {
    relu: (x) => (x > 0 ? x : 0),
    swish: (x) => x / (1 + Math.exp(-x)),
    elu: (x) => (x > 0 ? x : Math.expm1(x)),
    // jax.nn.gelu(approximate=True), its default
    gelu: (x) => 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x))),
  };
  const sigmoid = (x) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));

  /* An MLP decoder from its embedded form: {activation, image_shape, layers: [{in, out, w, b}]}
     (w row-major (in, out), as flax's kernel). Returns {decode(z) -> Float64Array h*w*c in [0, 1]}. */
  function mlpDecoder(spec) {
    const act = ACTIVATIONS[spec.activation];
    if (!act) throw new Error("static backend: unknown activation " + spec.activation);
    const layers = spec.layers.map((l) => ({ n: l.in, m: l.out, w: f32(l.w), b: f32(l.b) }));
    function decode(z) {
      if (z.length !== layers[0].n) throw new Error("static backend: latent of length " + z.length);
      let h = Float64Array.from(z);
      layers.forEach((l, j) => {
        const out = new Float64Array(l.m);
        for (let o = 0; o < l.m; o++) out[o] = l.b[o];
        for (let i = 0; i < l.n; i++) {
          const hi = h[i];
          if (hi === 0) continue;
          const row = i * l.m;
          for (let o = 0; o < l.m; o++) out[o] += hi * l.w[row + o];
        }
        const last = j === layers.length - 1;
        for (let o = 0; o < l.m; o++) out[o] = last ? sigmoid(out[o]) : act(out[o]);
        h = out;
      });
      return h;
    }
    return { decode };
  }

  /* explore/_inverse.py's inverse_map in JS: the IDW mean of the k nearest points' latents at xy,
     weights 1 / (d^2 + eps), eps = 1e-12 * extent^2 (extent: the map's larger side, 1 if 0); a
     position within sqrt(eps) of map points returns the mean of their latents. float64 throughout. */
  function mapExtent(points) {
    const lo = [Infinity, Infinity];
    const hi = [-Infinity, -Infinity];
    points.forEach((v, i) => ((lo[i % 2] = Math.min(lo[i % 2], v)), (hi[i % 2] = Math.max(hi[i % 2], v))));
    return Math.max(hi[0] - lo[0], hi[1] - lo[1]) || 1;
  }

  function inverse(points, latents, dim, xy, k, extent) {
    const n = points.length / 2;
    const eps = 1e-12 * extent * extent;
    const d2 = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const dx = xy[0] - points[2 * i];
      const dy = xy[1] - points[2 * i + 1];
      d2[i] = dx * dx + dy * dy;
    }
    const kk = Math.min(k, n);
    const idx = Array.from({ length: n }, (_, i) => i);
    idx.sort((a, b) => d2[a] - d2[b] || a - b);
    const nearest = idx.slice(0, kk);
    const hit = nearest.some((i) => d2[i] <= eps);
    const z = new Float64Array(dim);
    let total = 0;
    for (const i of nearest) {
      const w = hit ? (d2[i] <= eps ? 1 : 0) : 1 / (d2[i] + eps);
      total += w;
      for (let j = 0; j < dim; j++) z[j] += w * latents[i * dim + j];
    }
    for (let j = 0; j < dim; j++) z[j] /= total;
    return { z: Array.from(z), neighbors: nearest };
  }

  /* move.lerp / move.slerp (the stable great-circle form of latentjax/move/_paths.py) and move.path. */
  const dot = (a, b) => a.reduce((s, v, i) => s + v * b[i], 0);
  const safeSqrt = (s) => (s > 0 ? Math.sqrt(s) : 0);
  const sinc = (x) => (x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x));

  function lerp(z0, z1, t) {
    return z0.map((v, i) => (1 - t) * v + t * z1[i]);
  }

  function orthogonalAxis(u) {
    let j = 0;
    for (let i = 1; i < u.length; i++) if (Math.abs(u[i]) < Math.abs(u[j])) j = i;
    const q = u.map((v, i) => (i === j ? 1 : 0) - u[j] * v);
    const nq = Math.sqrt(dot(q, q));
    return q.map((v) => v / nq);
  }

  function greatCircle(u0, u1, t) {
    const d = u0.map((v, i) => v - u1[i]);
    const s = u0.map((v, i) => v + u1[i]);
    const dd = dot(d, d);
    const ss = dot(s, s);
    const angle = 2 * Math.atan2(safeSqrt(dd), safeSqrt(ss));
    let p = ss < dd ? s.map((v, i) => v - 0.5 * ss * u0[i]) : u0.map((v, i) => 0.5 * dd * v - d[i]);
    const pu = dot(u0, p);
    p = p.map((v, i) => v - pu * u0[i]);
    const pp = dot(p, p);
    if (angle < Math.PI / 2) {
      const k = (t * sinc((t * angle) / Math.PI)) / sinc(angle / Math.PI);
      return u0.map((v, i) => Math.cos(t * angle) * v + k * p[i]);
    }
    const v = pp > 0 ? p.map((x) => x / Math.sqrt(pp)) : orthogonalAxis(u0);
    return u0.map((x, i) => Math.cos(t * angle) * x + Math.sin(t * angle) * v[i]);
  }

  function slerp(z0, z1, t) {
    if (z0.length === 1) return lerp(z0, z1, t);
    const s0 = dot(z0, z0);
    const s1 = dot(z1, z1);
    const n0 = safeSqrt(s0);
    const n1 = safeSqrt(s1);
    let u0 = z0.map((v) => v / (s0 > 0 ? n0 : 1));
    let u1 = z1.map((v) => v / (s1 > 0 ? n1 : 1));
    if (!(s0 > 0)) u0 = u1;
    if (!(s1 > 0)) u1 = u0;
    const r = (1 - t) * n0 + t * n1;
    return greatCircle(u0, u1, t).map((v) => r * v);
  }

  function path(points, numPoints, method) {
    const f = method === "slerp" ? slerp : lerp;
    const k = points.length;
    const out = [];
    for (let i = 0; i < numPoints; i++) {
      const s = numPoints === 1 ? 0 : ((k - 1) * i) / (numPoints - 1);
      const seg = Math.min(Math.max(Math.floor(s), 0), k - 2);
      out.push(f(points[seg], points[seg + 1], s - seg));
    }
    return out;
  }

  /* move.path_diagnostics of decoded frames (arrays of equal length) and their latents. */
  function diagnostics(zs, frames) {
    let [latent, decoded, energy, maxStep] = [0, 0, 0, 0];
    for (let i = 1; i < zs.length; i++) {
      const dz = zs[i].map((v, j) => v - zs[i - 1][j]);
      latent += safeSqrt(dot(dz, dz));
      let sq = 0;
      for (let j = 0; j < frames[i].length; j++) sq += (frames[i][j] - frames[i - 1][j]) ** 2;
      decoded += safeSqrt(sq);
      energy += sq;
      maxStep = Math.max(maxStep, safeSqrt(sq));
    }
    return {
      latent_length: latent,
      decoded_length: decoded,
      decoded_energy: (zs.length - 1) * energy,
      max_step: maxStep,
    };
  }

  /* move.gram_schmidt and move.chain. */
  function gramSchmidt(vs) {
    const out = [];
    for (let v of vs) {
      for (const u of out) {
        const uu = dot(u, u);
        const c = uu > 0 ? dot(u, v) / uu : 0;
        v = v.map((x, i) => x - c * u[i]);
      }
      out.push(v);
    }
    return out;
  }

  function chain(z, vectors, strengths, orthogonalize) {
    const vs = orthogonalize ? gramSchmidt(vectors) : vectors;
    return z.map((x, i) => x + vs.reduce((s, v, j) => s + strengths[j] * v[i], 0));
  }

  /* Float pixels (h*w*c in [0, 1]) -> a canvas (scaled by an integer), 8-bit as _session.to_uint8. */
  function toCanvas(pixels, shape, scale) {
    const [h, w, c] = shape;
    const s = scale || 1;
    const canvas = document.createElement("canvas");
    canvas.width = w * s;
    canvas.height = h * s;
    const ctx = canvas.getContext("2d");
    const img = ctx.createImageData(w * s, h * s);
    const byte = (v) => Math.round(Math.min(Math.max(v, 0), 1) * 255);
    for (let y = 0; y < h * s; y++) {
      for (let x = 0; x < w * s; x++) {
        const src = (Math.floor(y / s) * w + Math.floor(x / s)) * c;
        const dst = (y * w * s + x) * 4;
        for (let k = 0; k < 3; k++) img.data[dst + k] = byte(pixels[src + (c < 3 ? 0 : k)]);
        img.data[dst + 3] = c === 2 || c === 4 ? byte(pixels[src + c - 1]) : 255; // grey + alpha, RGBA
      }
    }
    ctx.putImageData(img, 0, 0);
    return canvas;
  }

  function loadImage(url) {
    return new Promise((resolve, reject) => {
      const im = new Image();
      im.onload = () => resolve(im);
      im.onerror = () => reject(new Error("static backend: an embedded image did not load"));
      im.src = url;
    });
  }

  /* Cell i of a sprite sheet {url, cols, h, w} (im: its loaded image) as a canvas. */
  function spriteCell(sheet, im, i) {
    const canvas = document.createElement("canvas");
    canvas.width = sheet.w;
    canvas.height = sheet.h;
    const [r, c] = [Math.floor(i / sheet.cols), i % sheet.cols];
    canvas.getContext("2d").drawImage(im, c * sheet.w, r * sheet.h, sheet.w, sheet.h, 0, 0, sheet.w, sheet.h);
    return canvas;
  }

  const fail = (message) => {
    throw new Error(message);
  };

  /* The backend object explore.js talks to, from the embedded data (see _static.py). Its methods take
     and return what the live server's endpoints do (explore/_api.py), with the same refusals where a
     request is malformed; what needs the server says so in its error. */
  function makeBackend(data) {
    const info = data.info;
    const dim = info.latent_dim;
    const shape = info.image_shape;
    const points = f32(data.points);
    const latents = f32(data.latents);
    const n = points.length / 2;
    const extent = mapExtent(points);
    const mode = data.decoder.mode;
    const mlp = mode === "mlp" ? mlpDecoder(data.decoder) : null;
    const images = {}; // the sprite sheets' loaded <img>s (info() loads them)
    const thumbUrls = {};
    const latentOf = (i) => Array.from(latents.subarray(i * dim, (i + 1) * dim));
    const noServer = (what) =>
      fail(`explore (static page): ${what} needs the server: run latentjax explore on the run folder`);

    function latentsOf(payload, where, lo, hi, single) {
      const given = ["xy", "z", "index"].filter((k) => payload && k in payload);
      if (given.length !== 1 || (given[0] === "index" && !single))
        fail(`explore.api.${where}: give exactly one of ${single ? "xy, z or index" : "xy or z"}`);
      const key = given[0];
      if (key === "index") {
        const i = payload.index;
        if (!Number.isInteger(i) || i < 0 || i >= n) fail(`explore.api.${where}: index out of range [0, ${n - 1}]`);
        return { z: [latentOf(i)], xy: null };
      }
      const width = key === "xy" ? 2 : dim;
      const rows = single ? [payload[key]] : payload[key];
      if (!Array.isArray(rows) || rows.length < lo || rows.length > hi)
        fail(`explore.api.${where}: ${key} must hold between ${lo} and ${hi} points`);
      for (const r of rows) {
        if (!Array.isArray(r) || r.length !== width || !r.every((v) => typeof v === "number" && Number.isFinite(v)))
          fail(`explore.api.${where}: ${key} must be rows of ${width} finite numbers`);
      }
      if (key === "z") return { z: rows.map((r) => r.slice()), xy: null };
      return { z: rows.map((r) => inverse(points, latents, dim, r, data.k, extent).z), xy: rows };
    }

    /* Decoded float pixels of latents (mlp mode). */
    function pixels(z) {
      if (!mlp) noServer("decoding a latent that is not a map position (this page holds a grid of decodes)");
      return z.map((zi) => mlp.decode(zi));
    }

    /* grid mode: the precomputed decode of the grid cell nearest to map position xy */
    function gridImage(xy) {
      const g = data.decoder;
      const cell = [0, 1].map((a) => {
        const t = (xy[a] - g.lo[a]) / (g.hi[a] - g.lo[a]);
        return Math.min(g.size - 1, Math.max(0, Math.floor(t * g.size)));
      });
      return spriteCell(g.sprite, images.grid, cell[1] * g.size + cell[0]);
    }

    function decodedUrls(z, xy) {
      if (mlp) return pixels(z).map((p) => toCanvas(p, shape).toDataURL("image/png"));
      if (!xy) noServer("decoding a latent that is not a map position (this page holds a grid of decodes)");
      return xy.map((p) => gridImage(p).toDataURL("image/png"));
    }

    return {
      mode,
      async info() {
        images.thumbs = await loadImage(data.thumbs.url);
        if (mode === "grid") images.grid = await loadImage(data.decoder.sprite.url);
        return { ...info, static: { mode, note: data.note } };
      },
      async decode(payload) {
        const { z, xy } = latentsOf(payload, "decode", 1, info.limits.decode, false);
        return { z, images: decodedUrls(z, xy) };
      },
      async paths(payload) {
        const { z } = latentsOf(payload, "paths", 2, info.limits.path_points, false);
        const k = payload.num_points === undefined ? 9 : payload.num_points;
        if (!Number.isInteger(k) || k < 3 || k > 33) fail("explore.api.paths: num_points must be an integer in [3, 33]");
        const total = (z.length - 1) * (k - 1) + 1;
        const out = { waypoints: z, num_points: k };
        for (const m of ["lerp", "slerp"]) {
          const zs = path(z, total, m);
          const px = pixels(zs);
          out[m] = {
            z: zs,
            images: px.map((p) => toCanvas(p, shape).toDataURL("image/png")),
            diagnostics: diagnostics(zs, px),
          };
        }
        const unavailable = "geodesics need the server: run latentjax explore on the run folder";
        out.geodesic = { z: [], images: [], diagnostics: {}, unavailable };
        return out;
      },
      async edit(payload) {
        const { z, xy } = latentsOf(payload, "edit", 1, 1, true);
        const at = xy || ("index" in payload ? [[points[2 * payload.index], points[2 * payload.index + 1]]] : null);
        const edits = payload.edits || [];
        if (!Array.isArray(edits) || edits.length > 16) fail("explore.api.edit: edits must be a list of at most 16 edits");
        const vs = edits.map((e, i) => {
          if (!e || typeof e !== "object") fail(`explore.api.edit: edits[${i}] must be an object`);
          if (e.kind === "class") {
            const a = info.class_means[e.source];
            const b = info.class_means[e.target];
            if (!a || !b) fail(`explore.api.edit: edits[${i}]: a class with no example on the map`);
            return b.map((v, j) => v - a[j]);
          }
          if (e.kind === "factor" && info.edits[e.name]) return info.edits[e.name].vector;
          return fail(`explore.api.edit: edits[${i}].kind must be 'class' or 'factor' (with a known name)`);
        });
        const ss = edits.map((e, i) =>
          typeof e.strength === "number" && Number.isFinite(e.strength)
            ? e.strength
            : fail(`explore.api.edit: edits[${i}].strength must be a finite number`),
        );
        const out = vs.length ? chain(z[0], vs, ss, payload.orthogonalize === true) : z[0];
        return { base: z, z: [out], images: decodedUrls([out], vs.length ? null : at) };
      },
      async neighbors(payload) {
        const { z } = latentsOf(payload, "neighbors", 1, 1, true);
        const k = payload.k === undefined ? 8 : payload.k;
        if (!Number.isInteger(k) || k < 1 || k > Math.min(64, n)) fail("explore.api.neighbors: k out of range");
        const d = Array.from({ length: n }, (_, i) => {
          let s = 0;
          for (let j = 0; j < dim; j++) s += (latents[i * dim + j] - z[0][j]) ** 2;
          return Math.sqrt(s);
        });
        const idx = Array.from({ length: n }, (_, i) => i).sort((a, b) => d[a] - d[b] || a - b).slice(0, k);
        return {
          indices: idx,
          distances: idx.map((i) => d[i]),
          labels: idx.map((i) => info.labels[i]),
          points: idx.map((i) => [points[2 * i], points[2 * i + 1]]),
        };
      },
      async strip(payload) {
        if (payload.format === "gif") noServer("a GIF strip");
        const z = payload.z;
        if (!Array.isArray(z) || z.length === 0) noServer("this strip (geodesics)");
        const scale = payload.scale === undefined ? 4 : payload.scale;
        const frames = pixels(z).map((p) => toCanvas(p, shape, scale));
        const out = document.createElement("canvas");
        out.width = frames.reduce((s, f) => s + f.width, 0);
        out.height = frames[0].height;
        frames.reduce((x, f) => (out.getContext("2d").drawImage(f, x, 0), x + f.width), 0);
        return new Promise((resolve) => out.toBlob(resolve, "image/png"));
      },
      thumb(i) {
        if (!thumbUrls[i]) thumbUrls[i] = spriteCell(data.thumbs, images.thumbs, i).toDataURL("image/png");
        return thumbUrls[i];
      },
    };
  }

  global.LJStatic = {
    f32, mlpDecoder, mapExtent, inverse, lerp, slerp, path, diagnostics, gramSchmidt, chain, toCanvas, makeBackend,
    ACTIVATIONS,
  };
  const embedded = document.getElementById("lj-static-data");
  if (embedded) global.EXPLORE_BACKEND = makeBackend(JSON.parse(embedded.textContent));
})(window);
