// The signed-in person and the reference data every view shares: categories, teams, areas,
// grid names (fetched as needed), the scope's extent and the deployment's settings.
import { get, qs } from './api.js';
import { lang } from './i18n.js';

export const session = { me: null };
export const refs = {
  catalogVersion: null, categories: [], catByCode: new Map(), teams: [], teamById: new Map(),
  areas: [], areaByCode: new Map(), extent: null, config: {},
};
const gridNameCache = new Map();

export const hasRole = (...roles) => !!session.me && roles.some((r) => session.me.roles.includes(r));

export async function loadRefs() {
  const [cats, teams, areas, extent, config] = await Promise.all([
    get('/categories'),
    get('/teams?per_page=500'),
    get('/map/areas').catch(() => ({ items: [] })),
    get('/map/extent').catch(() => ({ bbox: null })),
    get('/console/config.json').catch(() => ({})),
  ]);
  setCategories(cats);
  setTeams(teams.items);
  refs.areas = areas.items;
  refs.areaByCode = new Map(areas.items.map((a) => [a.code, a]));
  refs.extent = extent.bbox;
  refs.config = config || {};
}

export function setCategories(cats) {
  refs.catalogVersion = cats.version;
  refs.categories = cats.items;
  refs.catByCode = new Map(cats.items.map((c) => [c.code, c]));
}

export function setTeams(items) {
  refs.teams = items;
  refs.teamById = new Map(items.map((t) => [t.id, t]));
}

export async function reloadTeams() { setTeams((await get('/teams?per_page=500')).items); }
export async function reloadCategories() { setCategories(await get('/categories')); }

export const catName = (c) => (c ? (lang === 'en' ? c.name_en || c.name_zh : c.name_zh || c.name_en) : '');
export function catLabel(code) {
  const c = refs.catByCode.get(code);
  return c ? `${catName(c)}` : code || '—';
}
export function teamName(id) {
  if (id == null) return '—';
  const team = refs.teamById.get(id);
  return team ? team.name : `#${id}`;
}
export function areaName(code) {
  const a = refs.areaByCode.get(code);
  if (!a) return code || '—';
  return lang === 'en' ? a.name_en || a.name : a.name;
}
export const streets = () => refs.areas.filter((a) => a.level === 'street');
export const communities = () => refs.areas.filter((a) => a.level === 'community');

// Grid names for codes (batched, cached): resolves when the names are known.
export async function loadGridNames(codes) {
  const missing = [...new Set(codes.filter((c) => c && !gridNameCache.has(c)))];
  for (let i = 0; i < missing.length; i += 400) {
    const part = missing.slice(i, i + 400);
    try {
      const { names } = await get(`/map/grid-names${qs({ codes: part })}`);
      for (const c of part) gridNameCache.set(c, names[c] || null);
    } catch {
      /* names are a nicety: the code is shown instead */
    }
  }
}
export function gridName(code) {
  return gridNameCache.get(code) || null;
}
// "荷塘社区 第001网格" is what a dispatcher says; the street is in the community's own row
export function gridShort(code) {
  const n = gridName(code);
  if (!n) return code || '—';
  const parts = n.split(' ');
  return parts.length > 2 ? parts.slice(1).join(' ') : n;
}
