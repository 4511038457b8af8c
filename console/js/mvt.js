// A small Mapbox Vector Tile decoder (spec 2.1): protocol buffers read by hand, geometry
// commands decoded to rings, lines and points in tile units (0…extent, y down).
// Features: {type: 1 point | 2 line | 3 polygon, props, geom: [[[x, y], …], …]}.

class Reader {
  constructor(buf) { this.b = buf; this.i = 0; }
  varint() {
    let result = 0;
    let shift = 0;
    let byte;
    do {
      byte = this.b[this.i++];
      // past 28 bits plain multiplication keeps the value exact up to 2^53
      result += shift < 28 ? (byte & 0x7f) << shift : (byte & 0x7f) * 2 ** shift;
      shift += 7;
    } while (byte & 0x80);
    return result;
  }
  svarint() { const v = this.varint(); return v % 2 === 1 ? (v + 1) / -2 : v / 2; }
  bytes() { const n = this.varint(); const s = this.b.subarray(this.i, this.i + n); this.i += n; return s; }
  skip(wire) {
    if (wire === 0) this.varint();
    else if (wire === 1) this.i += 8;
    else if (wire === 2) this.i += this.varint();
    else if (wire === 5) this.i += 4;
    else throw new Error(`unknown wire type ${wire}`);
  }
  *fields(end = this.b.length) {
    while (this.i < end) {
      const key = this.varint();
      yield [key >> 3, key & 7];
    }
  }
}

const utf8 = new TextDecoder();

function readValue(buf) {
  const r = new Reader(buf);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let value = null;
  for (const [field, wire] of r.fields()) {
    if (field === 1) value = utf8.decode(r.bytes());
    else if (field === 2) { value = view.getFloat32(r.i, true); r.i += 4; }
    else if (field === 3) { value = view.getFloat64(r.i, true); r.i += 8; }
    else if (field === 4 || field === 5) value = r.varint();
    else if (field === 6) value = r.svarint();
    else if (field === 7) value = r.varint() !== 0;
    else r.skip(wire);
  }
  return value;
}

function packed(buf) {
  const r = new Reader(buf);
  const out = [];
  while (r.i < buf.length) out.push(r.varint());
  return out;
}

export function decodeGeometry(cmds) {
  const parts = [];
  let part = null;
  let x = 0;
  let y = 0;
  let i = 0;
  while (i < cmds.length) {
    const c = cmds[i++];
    const id = c & 7;
    const count = c >> 3;
    if (id === 1 || id === 2) {
      for (let k = 0; k < count; k++) {
        const dx = cmds[i++];
        const dy = cmds[i++];
        x += (dx >> 1) ^ -(dx & 1);
        y += (dy >> 1) ^ -(dy & 1);
        if (id === 1) { part = []; parts.push(part); }
        part.push([x, y]);
      }
    } else if (id === 7) {
      if (part && part.length) part.push(part[0]);
    } else {
      throw new Error(`unknown geometry command ${id}`);
    }
  }
  return parts;
}

function readFeature(buf, keys, values) {
  const r = new Reader(buf);
  const f = { id: null, type: 0, props: {}, geom: [] };
  for (const [field, wire] of r.fields()) {
    if (field === 1) f.id = r.varint();
    else if (field === 2) {
      const tags = packed(r.bytes());
      for (let k = 0; k + 1 < tags.length; k += 2) f.props[keys[tags[k]]] = values[tags[k + 1]];
    } else if (field === 3) f.type = r.varint();
    else if (field === 4) f.geom = decodeGeometry(packed(r.bytes()));
    else r.skip(wire);
  }
  return f;
}

function readLayer(buf) {
  const r = new Reader(buf);
  const layer = { name: '', extent: 4096, features: [] };
  const keys = [];
  const values = [];
  const raw = [];
  for (const [field, wire] of r.fields()) {
    if (field === 1) layer.name = utf8.decode(r.bytes());
    else if (field === 2) raw.push(r.bytes());
    else if (field === 3) keys.push(utf8.decode(r.bytes()));
    else if (field === 4) values.push(readValue(r.bytes()));
    else if (field === 5) layer.extent = r.varint();
    else r.skip(wire);
  }
  layer.features = raw.map((b) => readFeature(b, keys, values));
  return layer;
}

// ArrayBuffer → {layerName: {name, extent, features}}
export function decodeTile(buffer) {
  const buf = new Uint8Array(buffer);
  const r = new Reader(buf);
  const layers = {};
  for (const [field, wire] of r.fields()) {
    if (field === 3) { const l = readLayer(r.bytes()); layers[l.name] = l; } else r.skip(wire);
  }
  return layers;
}
