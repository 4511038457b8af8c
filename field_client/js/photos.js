// Photos are made ready on the device: upright, long edge at most 2048 px, JPEG. A photo that
// is already small enough and of an accepted type goes as taken (the server keeps what its
// EXIF says about time and place, and its hash is the camera file's).
export const MAX_EDGE = 2048;
const AS_TAKEN = new Set(['image/jpeg', 'image/png', 'image/webp']);
const AS_TAKEN_MAX_BYTES = 8 * 1024 * 1024;

export class PhotoError extends Error {}

export async function prepare(file) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(file, { imageOrientation: 'from-image' });
  } catch {
    throw new PhotoError('not-an-image');
  }
  try {
    const { width, height } = bitmap;
    const takenAt = new Date(file.lastModified || Date.now()).toISOString();
    if (Math.max(width, height) <= MAX_EDGE && AS_TAKEN.has(file.type) && file.size <= AS_TAKEN_MAX_BYTES) {
      return { blob: file, name: file.name || 'photo', width, height, taken_at: takenAt };
    }
    const scale = Math.min(1, MAX_EDGE / Math.max(width, height));
    const w = Math.max(1, Math.round(width * scale));
    const h = Math.max(1, Math.round(height * scale));
    const blob = await draw(bitmap, w, h);
    return { blob, name: 'photo.jpg', width: w, height: h, taken_at: takenAt };
  } finally {
    bitmap.close();
  }
}

async function draw(bitmap, w, h) {
  if (typeof OffscreenCanvas !== 'undefined') {
    const canvas = new OffscreenCanvas(w, h);
    paint(canvas.getContext('2d'), bitmap, w, h);
    return canvas.convertToBlob({ type: 'image/jpeg', quality: 0.85 });
  }
  const canvas = document.createElement('canvas');
  canvas.width = w;
  canvas.height = h;
  paint(canvas.getContext('2d'), bitmap, w, h);
  return new Promise((resolve, reject) => canvas.toBlob((b) => (b ? resolve(b) : reject(new PhotoError('encode'))), 'image/jpeg', 0.85));
}

function paint(ctx, bitmap, w, h) {
  ctx.fillStyle = '#fff'; // a transparent PNG becomes a JPEG on white, not on black
  ctx.fillRect(0, 0, w, h);
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(bitmap, 0, 0, w, h);
}
