// The device position: watchPosition with its accuracy. A fix within GOOD_M is taken as it is;
// a poorer one needs the person's choice (accept it, or place a pin on the map instead).
export const GOOD_M = 50;

export function watch(onFix, onError) {
  if (!('geolocation' in navigator)) {
    onError({ code: 2, reason: 'unavailable' });
    return () => {};
  }
  const id = navigator.geolocation.watchPosition(
    (p) => onFix({
      lon: p.coords.longitude, lat: p.coords.latitude,
      accuracy_m: Math.round(p.coords.accuracy ?? 99999), at: new Date(p.timestamp || Date.now()).toISOString(),
    }),
    (e) => onError({ code: e.code, reason: { 1: 'denied', 2: 'unavailable', 3: 'timeout' }[e.code] || 'unavailable' }),
    { enableHighAccuracy: true, maximumAge: 5000, timeout: 20000 },
  );
  return () => navigator.geolocation.clearWatch(id);
}

export const isGood = (fix) => fix && fix.accuracy_m <= GOOD_M;

export function formatFix(fix) {
  return `${fix.lat.toFixed(6)}, ${fix.lon.toFixed(6)}`;
}

// Point in polygon (GeoJSON Polygon or MultiPolygon coordinates), for finding the grid offline.
export function inFeature(lon, lat, geometry) {
  const polys = geometry.type === 'Polygon' ? [geometry.coordinates] : geometry.type === 'MultiPolygon' ? geometry.coordinates : [];
  return polys.some((rings) => rings.reduce((inside, ring, i) => (inRing(lon, lat, ring) ? !inside : inside), false));
}

function inRing(x, y, ring) {
  let inside = false;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const [xi, yi] = ring[i];
    const [xj, yj] = ring[j];
    if ((yi > y) !== (yj > y) && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

export function bboxOf(features) {
  let b = null;
  for (const f of features) {
    const walk = (c) => {
      if (typeof c[0] === 'number') {
        b = b ? [Math.min(b[0], c[0]), Math.min(b[1], c[1]), Math.max(b[2], c[0]), Math.max(b[3], c[1])] : [c[0], c[1], c[0], c[1]];
      } else c.forEach(walk);
    };
    walk(f.geometry.coordinates);
  }
  return b;
}
