// A report taken on the hotline by a dispatcher: category, urgency, description, address and the
// place, picked on the map (its grid is found by the server). POST /reports with an Idempotency-Key,
// so a double click or a retry makes one case.
import { ApiError, call } from '../api.js';
import { t } from '../i18n.js';
import { gridStyle, tileUrl } from '../layers.js';
import { createMap } from '../mapview.js';
import { catName, refs } from '../store.js';
import { dialog, h, isoLocal, option, uuid } from '../ui.js';

export function hotlineReport(onCreated) {
  const key = uuid();
  const cat = h('select', { testid: 'hotline-category', required: true },
    option('', t('report.choose')), refs.categories.filter((c) => c.active).map((c) => option(c.code, `${c.code} ${catName(c)}`)));
  const urg = h('select', { testid: 'hotline-urgency' }, ['A', 'B', 'C'].map((u) => option(u, t(`urgency.${u}`), u === 'B')));
  const desc = h('textarea', { rows: 3, maxlength: 4000, testid: 'hotline-description' });
  const addr = h('input', { type: 'text', maxlength: 300, testid: 'hotline-address' });
  const lon = h('input', { type: 'number', step: '0.000001', testid: 'hotline-lon', 'aria-label': t('hotline.lon'), placeholder: t('hotline.lon') });
  const lat = h('input', { type: 'number', step: '0.000001', testid: 'hotline-lat', 'aria-label': t('hotline.lat'), placeholder: t('hotline.lat') });
  const caller = h('input', { type: 'text', maxlength: 100, testid: 'hotline-caller', autocomplete: 'off' });
  const phone = h('input', { type: 'tel', maxlength: 40, testid: 'hotline-phone', autocomplete: 'off' });
  const box = h('div', { class: 'pick-map', testid: 'hotline-map' });
  let map = null;
  const setPoint = (p) => {
    lon.value = p.lon.toFixed(6);
    lat.value = p.lat.toFixed(6);
    map.setOverlay('pin', [{ geometry: { type: 'Point', coordinates: [p.lon, p.lat] } }], () => ({ pin: true }));
  };
  const d = dialog({
    title: t('hotline.title'), testid: 'hotline-dialog', wide: true,
    body: h('div', { class: 'form two' },
      h('div', {},
        h('label', { class: 'field' }, h('span', { class: 'label' }, t('col.category')), cat),
        h('label', { class: 'field' }, h('span', { class: 'label' }, t('col.urgency')), urg),
        h('label', { class: 'field' }, h('span', { class: 'label' }, t('col.description')), desc),
        h('label', { class: 'field' }, h('span', { class: 'label' }, t('case.address')), addr),
        h('div', { class: 'field' }, h('span', { class: 'label' }, t('hotline.point')), h('div', { class: 'row lonlat' }, lon, lat)),
        h('div', { class: 'row lonlat' },
          h('label', { class: 'field' }, h('span', { class: 'label' }, t('hotline.caller')), caller),
          h('label', { class: 'field' }, h('span', { class: 'label' }, t('hotline.phone')), phone))),
      h('div', {}, h('p', { class: 'muted small' }, t('hotline.pick')), box)),
    actions: [
      { label: t('cancel') },
      { label: t('hotline.submit'), primary: true, testid: 'hotline-submit', onClick: async () => {
        if (!cat.value) throw new Error(t('form.required', { field: t('col.category') }));
        if (!lon.value || !lat.value) throw new Error(t('form.required', { field: t('hotline.point') }));
        const body = { category_code: cat.value, urgency: urg.value, description: desc.value, lon: Number(lon.value), lat: Number(lat.value),
          observed_at: isoLocal(new Date()), catalog_version: refs.catalogVersion || undefined, location_flags: ['pin'] };
        if (addr.value.trim()) body.address = addr.value.trim();
        const contact = Object.fromEntries([['name', caller.value.trim()], ['phone', phone.value.trim()]].filter(([, v]) => v));
        if (Object.keys(contact).length) body.contact = contact;
        const res = await call('/reports', { method: 'POST', json: body, headers: { 'Idempotency-Key': key } });
        if (!res.ok) throw new ApiError(res);
        onCreated(res.data);
      } },
    ],
    onClose: () => map && map.destroy(),
  });
  map = createMap(box, { minZoom: 10, onClick: (_, p) => setPoint(p), label: t('hotline.pick') });
  const g = tileUrl('grids', {});
  map.addTileLayer({ id: 'grids', url: g.url, key: g.key, minTileZoom: 12, maxTileZoom: 16, style: gridStyle({ metric: 'cases' }), hit: false });
  if (refs.config.tile_url) map.setBaseTiles(refs.config.tile_url);
  if (refs.extent) { map.setHome(refs.extent); requestAnimationFrame(() => map.fit(refs.extent)); }
  return d;
}
