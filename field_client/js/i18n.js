// zh-CN by default, English on request; the choice is kept on the device.
import { kv } from './db.js';

const zh = {
  'app.title': '网格巡查', 'net.online': '在线', 'net.offline': '离线', signout: '退出', cancel: '取消', close: '关闭',
  remove: '删除', optional: '选填', 'boot.failed': '启动失败',
  'nav.map': '地图', 'nav.report': '上报', 'nav.tasks': '任务', 'nav.patrol': '巡查', 'nav.outbox': '发件箱',
  'login.title': '登录', 'login.username': '用户名', 'login.password': '密码', 'login.submit': '登录',
  'login.bad': '用户名或密码不正确', 'login.failed': '登录失败', 'login.offline': '无法连接服务器，请联网后登录',
  'login.expired': '登录已过期，请重新登录', 'login.expiredItems': '登录已过期：{n} 项未发送的内容已保留，重新登录后自动发送',
  'signout.warn': '还有 {n} 项未发送。退出将从本机删除这些内容，且无法恢复。确定退出？', 'signout.confirm': '删除并退出',
  'signout.done': '已退出，本机数据已清除',
  'home.grids': '责任网格 {n} 个', 'home.here': '我的位置',
  'report.title': '上报问题', 'report.category': '类别', 'report.search': '搜索类别（名称或代码）', 'report.choose': '— 选择类别 —',
  'report.noCategories': '类别尚未下载（需联网一次）', 'report.urgency': '紧急程度', 'report.description': '描述',
  'report.photos': '照片', 'report.photo': '照片', 'report.addPhoto': '拍照 / 添加照片', 'report.location': '位置',
  'report.usePin': '在地图上标点', 'report.useGps': '改用GPS定位', 'report.tapMap': '点击地图放置位置标记',
  'report.grid': '网格', 'report.submit': '提交上报', 'report.queued': '已保存到发件箱，联网后自动发送',
  'report.already': '此上报已从另一个窗口提交过，不会重复发送',
  'urgency.A': 'A 紧急', 'urgency.B': 'B 一般', 'urgency.C': 'C 缓办',
  'loc.waiting': '正在定位…', 'loc.poor': '精度不足，请等待或选择', 'loc.acceptPoor': '使用此位置（±{n} m）',
  'loc.acceptedPoor': '已接受低精度', 'loc.pin': '地图标点', 'loc.placePin': '请在地图上标点', 'loc.noGrid': '不在任何网格内（由派遣中心确定）',
  'loc.snapped': '就近归属',
  'geo.denied': '未获得定位权限', 'geo.unavailable': '无法定位', 'geo.timeout': '定位超时',
  'photo.bad': '无法读取该照片', 'photo.processing': '正在处理照片…',
  'missing.title': '还需要', 'missing.catalog': '类别列表', 'missing.category': '类别', 'missing.photo': '至少一张照片',
  'missing.position': '位置', 'missing.note': '说明', 'missing.hours': '延期小时数',
  'missing.photoLost': '有照片无法读取，请删除后重拍',
  'storage.full': '本机存储已满：内容未保存，请清理空间后重试（表单内容仍在）', 'storage.failed': '无法保存到本机',
  'storage.used': '本机存储 {mb} MB / {total} MB', 'storage.persisted': '已设为持久存储', 'storage.nearlyFull': '存储将满',
  'tasks.title': '任务', 'tasks.refresh': '刷新', 'tasks.refreshed': '任务已更新', 'tasks.loading': '正在加载…',
  'tasks.offline': '离线：显示上次下载的任务', 'tasks.failed': '无法加载任务，显示上次下载的任务', 'tasks.updated': '更新于 {time}',
  'tasks.none': '暂无任务', 'tasks.noActions': '当前没有可执行的操作', 'tasks.queued': '已保存到发件箱',
  'tasks.conflict': '需要处理', 'tasks.conflictTitle': '冲突：案件在此期间已被修改', 'tasks.attentionTitle': '服务器未接受此操作',
  'tasks.kept': '您的说明和照片已保留。', 'tasks.applyAgain': '按最新状态重新提交', 'tasks.discard': '放弃此操作',
  'tasks.discardConfirm': '放弃此操作及其照片？', 'tasks.needOnline': '需要联网', 'tasks.noLonger': '案件现为“{status}”，此操作已不可执行',
  'case.deadline': '本阶段期限', 'case.rework': '返工 {n} 次',
  'form.reasonCode': '退回原因', 'form.hours': '延期（小时）', 'form.note': '说明', 'form.reason': '原因', 'form.submit': '提交',
  'action.accept': '签收', 'action.return': '退回', 'action.request_extension': '申请延期', 'action.handle': '处置完成',
  'action.verify_pass': '核查通过', 'action.verify_fail': '核查不通过', 'action.register': '立案', 'action.reject': '不予立案',
  'action.merge': '合并', 'action.dispatch': '派遣', 'action.suspend': '挂起', 'action.resume': '恢复',
  'action.decide_extension': '审批延期', 'action.escalate': '督办',
  'reason.not_competent': '非本单位职责', 'reason.outside_area': '不在服务区域', 'reason.wrong_category': '类别错误',
  'reason.duplicate': '重复案件', 'reason.cannot_locate': '无法找到现场', 'reason.other': '其他',
  'status.reported': '已上报', 'status.registered': '已立案', 'status.dispatched': '已派遣', 'status.in_progress': '处置中',
  'status.handled': '已处置', 'status.returned': '已退回', 'status.suspended': '已挂起', 'status.closed': '已结案',
  'status.rejected': '不予立案', 'status.merged': '已合并',
  'patrol.title': '巡查', 'patrol.points': '轨迹点', 'patrol.start': '开始巡查', 'patrol.stop': '结束巡查',
  'patrol.recording': '正在记录轨迹', 'patrol.idle': '未在巡查', 'patrol.elsewhere': '另一个窗口正在记录轨迹',
  'outbox.title': '发件箱', 'outbox.unsent': '未发送', 'outbox.sendNow': '立即发送', 'outbox.summary': '{n} 项未发送',
  'outbox.empty': '全部已发送', 'outbox.attempts': '已尝试 {n} 次', 'outbox.retryAt': '{time} 重试',
  'outbox.waiting': '等待前一项发送', 'outbox.retry': '重试', 'outbox.discard': '放弃',
  'outbox.discardConfirm': '放弃这 {n} 项？它们不会被发送。',
  'ostatus.queued': '排队中', 'ostatus.sending': '发送中', 'ostatus.sent': '已发送', 'ostatus.needs_attention': '需要处理',
  'kind.report': '上报', 'kind.photo': '照片', 'kind.patrol_start': '巡查开始', 'kind.patrol_points': '轨迹', 'kind.patrol_end': '巡查结束',
};

const en = {
  'app.title': 'GridPatrol', 'net.online': 'Online', 'net.offline': 'Offline', signout: 'Sign out', cancel: 'Cancel', close: 'Close',
  remove: 'Remove', optional: 'optional', 'boot.failed': 'The app could not start',
  'nav.map': 'Map', 'nav.report': 'Report', 'nav.tasks': 'Tasks', 'nav.patrol': 'Patrol', 'nav.outbox': 'Outbox',
  'login.title': 'Sign in', 'login.username': 'Username', 'login.password': 'Password', 'login.submit': 'Sign in',
  'login.bad': 'Wrong username or password', 'login.failed': 'Sign-in failed', 'login.offline': 'Cannot reach the server; sign in when online',
  'login.expired': 'Your session has ended; please sign in again', 'login.expiredItems': 'Your session has ended: {n} unsent items are kept and go once you sign in again',
  'signout.warn': '{n} items are not sent yet. Signing out deletes them from this device for good. Sign out?', 'signout.confirm': 'Delete and sign out',
  'signout.done': 'Signed out; this device holds none of your data',
  'home.grids': '{n} responsibility grids', 'home.here': 'me',
  'report.title': 'Report a problem', 'report.category': 'Category', 'report.search': 'Search categories (name or code)', 'report.choose': '— choose a category —',
  'report.noCategories': 'Categories not downloaded yet (go online once)', 'report.urgency': 'Urgency', 'report.description': 'Description',
  'report.photos': 'Photos', 'report.photo': 'Photo', 'report.addPhoto': 'Take / add photo', 'report.location': 'Position',
  'report.usePin': 'Place a pin on the map', 'report.useGps': 'Use GPS instead', 'report.tapMap': 'Tap the map to place the pin',
  'report.grid': 'Grid', 'report.submit': 'Submit report', 'report.queued': 'Saved to the outbox; it is sent automatically when online',
  'report.already': 'This report was already submitted from another window; it will not be sent twice',
  'urgency.A': 'A urgent', 'urgency.B': 'B normal', 'urgency.C': 'C slow',
  'loc.waiting': 'Finding your position…', 'loc.poor': 'poor accuracy: wait, or choose', 'loc.acceptPoor': 'Use this position (±{n} m)',
  'loc.acceptedPoor': 'poor accuracy accepted', 'loc.pin': 'Pin on the map', 'loc.placePin': 'place a pin on the map', 'loc.noGrid': 'outside every grid (the dispatch centre decides)',
  'loc.snapped': 'nearest grid',
  'geo.denied': 'Location permission denied', 'geo.unavailable': 'Position unavailable', 'geo.timeout': 'No position yet',
  'photo.bad': 'This photo could not be read', 'photo.processing': 'Processing photos…',
  'missing.title': 'Still needed', 'missing.catalog': 'category list', 'missing.category': 'category', 'missing.photo': 'at least one photo',
  'missing.position': 'position', 'missing.note': 'note', 'missing.hours': 'hours',
  'missing.photoLost': 'a photo can no longer be read: remove it and take it again',
  'storage.full': 'Device storage is full: nothing was saved; free some space and try again (the form is kept)', 'storage.failed': 'Could not save on this device',
  'storage.used': 'Storage {mb} MB of {total} MB', 'storage.persisted': 'persistent', 'storage.nearlyFull': 'nearly full',
  'tasks.title': 'Tasks', 'tasks.refresh': 'Refresh', 'tasks.refreshed': 'Tasks updated', 'tasks.loading': 'Loading…',
  'tasks.offline': 'Offline: showing the tasks last downloaded', 'tasks.failed': 'Could not load tasks; showing the last ones', 'tasks.updated': 'Updated {time}',
  'tasks.none': 'No tasks', 'tasks.noActions': 'Nothing to do on this case now', 'tasks.queued': 'Saved to the outbox',
  'tasks.conflict': 'needs attention', 'tasks.conflictTitle': 'Conflict: the case changed meanwhile', 'tasks.attentionTitle': 'The server did not accept this action',
  'tasks.kept': 'Your note and photos are kept.', 'tasks.applyAgain': 'Apply again to the current case', 'tasks.discard': 'Discard this action',
  'tasks.discardConfirm': 'Discard this action and its photos?', 'tasks.needOnline': 'Needs a network', 'tasks.noLonger': 'The case is now "{status}"; this action is no longer possible',
  'case.deadline': 'Stage deadline', 'case.rework': 'reworked {n}×',
  'form.reasonCode': 'Reason', 'form.hours': 'Extra hours', 'form.note': 'Note', 'form.reason': 'Reason', 'form.submit': 'Submit',
  'action.accept': 'Accept', 'action.return': 'Return', 'action.request_extension': 'Ask for more time', 'action.handle': 'Report handled',
  'action.verify_pass': 'Verify: fixed', 'action.verify_fail': 'Verify: not fixed', 'action.register': 'Register', 'action.reject': 'Reject',
  'action.merge': 'Merge', 'action.dispatch': 'Dispatch', 'action.suspend': 'Suspend', 'action.resume': 'Resume',
  'action.decide_extension': 'Decide extension', 'action.escalate': 'Escalate',
  'reason.not_competent': 'Not our competence', 'reason.outside_area': 'Outside our area', 'reason.wrong_category': 'Wrong category',
  'reason.duplicate': 'Duplicate', 'reason.cannot_locate': 'Cannot find the site', 'reason.other': 'Other',
  'status.reported': 'reported', 'status.registered': 'registered', 'status.dispatched': 'dispatched', 'status.in_progress': 'in progress',
  'status.handled': 'handled', 'status.returned': 'returned', 'status.suspended': 'suspended', 'status.closed': 'closed',
  'status.rejected': 'rejected', 'status.merged': 'merged',
  'patrol.title': 'Patrol', 'patrol.points': 'Track points', 'patrol.start': 'Start patrol', 'patrol.stop': 'Stop patrol',
  'patrol.recording': 'Recording the track', 'patrol.idle': 'Not patrolling', 'patrol.elsewhere': 'Another window is recording the track',
  'outbox.title': 'Outbox', 'outbox.unsent': 'Unsent', 'outbox.sendNow': 'Send now', 'outbox.summary': '{n} not sent yet',
  'outbox.empty': 'Everything is sent', 'outbox.attempts': '{n} attempts', 'outbox.retryAt': 'retry at {time}',
  'outbox.waiting': 'waiting for the item before it', 'outbox.retry': 'Retry', 'outbox.discard': 'Discard',
  'outbox.discardConfirm': 'Discard these {n} items? They will not be sent.',
  'ostatus.queued': 'queued', 'ostatus.sending': 'sending', 'ostatus.sent': 'sent', 'ostatus.needs_attention': 'needs attention',
  'kind.report': 'Report', 'kind.photo': 'Photo', 'kind.patrol_start': 'Patrol start', 'kind.patrol_points': 'Track', 'kind.patrol_end': 'Patrol end',
};

const DICTS = { 'zh-CN': zh, en };
export let lang = 'zh-CN';

export function t(key, vars = {}) {
  const s = DICTS[lang][key] ?? zh[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (_, k) => (vars[k] ?? ''));
}

export const catName = (c) => (lang === 'en' ? c.name_en || c.name_zh : c.name_zh || c.name_en);

export async function initLang() {
  try { lang = (await kv.get('lang')) || 'zh-CN'; } catch { lang = 'zh-CN'; }
  if (!DICTS[lang]) lang = 'zh-CN';
  applyLang();
}

export async function toggleLang() {
  lang = lang === 'zh-CN' ? 'en' : 'zh-CN';
  applyLang();
  try { await kv.set('lang', lang); } catch { /* the choice holds for this visit */ }
}

export function applyLang() {
  document.documentElement.lang = lang;
  document.title = `${t('app.title')} · GridPatrol`;
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll('[data-i18n-ph]')) el.placeholder = t(el.dataset.i18nPh);
  const toggle = document.getElementById('lang-toggle');
  toggle.textContent = lang === 'zh-CN' ? 'EN' : '中文';
  toggle.setAttribute('aria-label', lang === 'zh-CN' ? 'English' : '中文');
}
