"""The pages' two languages: Chinese (zh-CN, the default) and English; choosing one, and every message.

The choice, strongest first: ``?lang=zh|en`` on any page (remembered in a cookie), the cookie, the
browser's Accept-Language, else Chinese. Pure: no I/O; the pages read the request and set the cookie.
"""

from __future__ import annotations

from typing import Literal

from anju.hub.api.i18n_field import FIELD_MESSAGES
from anju.hub.api.i18n_status import STATUS_MESSAGES

Language = Literal["zh", "en"]
LANGUAGES: tuple[Language, ...] = ("zh", "en")
DEFAULT_LANGUAGE: Language = "zh"
LANG_COOKIE = "anju_lang"
# What <html lang> says for each language.
HTML_LANG: dict[Language, str] = {"zh": "zh-CN", "en": "en"}


def known_language(value: str | None) -> Language | None:
    """``zh`` or ``en`` when ``value`` names one of them (``zh-CN``, ``EN-us`` too), else None."""
    if not value:
        return None
    primary = value.strip().lower().replace("_", "-").split("-", 1)[0]
    for lang in LANGUAGES:
        if primary == lang:
            return lang
    return None


def from_accept_language(header: str | None) -> Language | None:
    """The first of our languages in an Accept-Language header by preference (q), or None."""
    if not header:
        return None
    ranked: list[tuple[float, int, Language]] = []
    for position, part in enumerate(header[:1000].split(",")[:30]):
        tag, _, params = part.partition(";")
        lang = known_language(tag)
        if lang is None:
            continue
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > 0:
            ranked.append((-q, position, lang))
    return min(ranked)[2] if ranked else None


def choose_language(*, query: str | None, cookie: str | None, accept_language: str | None) -> Language:
    """The language of a page: the query parameter, the cookie, Accept-Language, else Chinese."""
    return (known_language(query) or known_language(cookie) or from_accept_language(accept_language)
            or DEFAULT_LANGUAGE)


# Every fixed text of the pages, by key: (中文, English). ``{name}`` fields are filled by ``message``.
MESSAGES: dict[str, tuple[str, str]] = {
    # header, footer, navigation
    "brand": ("安居", "anju"),
    "tagline": ("公租房空置与转租线索", "leads on empty or sublet public rental units"),
    "audit_link": ("审计日志", "audit log"),
    "sign_out": ("退出", "sign out"),
    "switch_language": ("English", "中文"),
    "switch_language_title": ("Switch to English", "切换到中文"),
    "privacy": ("人脸信息不出小区：本页只显示化名编号和计数。",
                "Faces never leave the estate: only pseudonymous ids and counts are shown here."),
    "lead_not_verdict": ("线索不是结论，请上门核实。",
                         "An alert is a lead, not a verdict: visit before you decide."),
    "all_alerts": ("← 全部线索", "← all alerts"),
    "role.inspector": ("巡查员", "inspector"),
    "role.supervisor": ("主管", "supervisor"),
    "role.auditor": ("审计员", "auditor"),
    "role.admin": ("管理员", "admin"),
    # sign-in
    "login.title": ("登录", "Sign in"),
    "login.name": ("用户名", "Name"),
    "login.password": ("密码", "Password"),
    "login.submit": ("登录", "Sign in"),
    "login.wrong": ("用户名或密码错误", "Wrong name or password"),
    "login.throttled": ("登录失败次数过多，请稍后再试", "Too many failed sign-ins; try again later"),
    "login.locked": ("登录失败次数过多，账户已锁定，请联系管理员",
                     "Account locked after failed sign-ins; ask an admin"),
    # not found
    "not_found.title": ("未找到", "Not found"),
    "not_found.text": ("{what}不存在。", "{what} does not exist."),
    "not_allowed.title": ("无权查看", "Not allowed"),
    "not_allowed.text": ("您的角色不能查看{what}。", "Your role may not see the {what}."),
    "object.alert": ("线索 #{id}", "Alert #{id}"),
    "object.case": ("案件 #{id}", "Case #{id}"),
    "object.audit": ("审计日志", "audit log"),
    # the queue
    "alerts.title": ("线索", "Alerts"),
    "alerts.heading.risk": ("线索（按风险排序）", "Alerts, highest risk first"),
    "alerts.heading.oldest": ("线索（最早的在前）", "Alerts, oldest first"),
    "alerts.heading.newest": ("线索（最新的在前）", "Alerts, newest first"),
    "counts": ("单元 {units} · 读数 {readings} · 门禁事件 {events} · 待处理线索 {alerts_open} · 已报送案件 "
               "{cases_filed}",
               "units {units} · readings {readings} · access events {events} · open alerts {alerts_open} · "
               "cases filed {cases_filed}"),
    "counts.dead_letters": ("无法解析的消息 {n}", "dead letters {n}"),
    "filter.estate": ("小区", "Estate"),
    "filter.kind": ("类型", "Kind"),
    "filter.status": ("状态", "Status"),
    "filter.all": ("全部", "all"),
    "filter.min_age": ("首次标记至少几天前", "First flagged at least N days ago"),
    "filter.max_age": ("首次标记至多几天前", "First flagged at most N days ago"),
    "filter.days": ("天", "days"),
    "filter.sort": ("排序", "Sort"),
    "sort.risk": ("风险最高在前", "highest risk first"),
    "sort.oldest": ("最早标记在前", "oldest first"),
    "sort.newest": ("最新标记在前", "newest first"),
    "filter.submit": ("筛选", "Filter"),
    "total.one": ("共 {n} 条", "{n} alert"),
    "total.many": ("共 {n} 条", "{n} alerts"),
    "col.score": ("风险分", "Score"),
    "col.kind": ("类型", "Kind"),
    "col.unit": ("单元", "Unit"),
    "col.estate": ("小区", "Estate"),
    "col.flagged": ("首次 / 最近标记", "First / last flagged"),
    "col.age": ("已有天数", "Age"),
    "col.status": ("状态", "Status"),
    "col.reasons": ("原因", "Reasons"),
    "col.case": ("案件", "Case"),
    "col.assignee": ("承办人", "Inspector"),
    "col.visit": ("上门日期", "Visit"),
    "col.top_reason": ("主要原因", "Top reason"),
    "reasons.more": ("另有 {n} 条", "{n} more"),
    "filter.unit": ("单元号或地址", "Unit or address"),
    "filter.mine": ("我的案件", "my cases"),
    "filter.unit_hint": ("单元号或地址的一段", "part of a unit id or address"),
    "batch.assign_to": ("批量分派给", "Assign ticked cases to"),
    "batch.assign": ("分派所选案件", "Assign"),
    "batch.pick": ("选择", "pick"),
    "batch.result": ("已分派 {assigned} 件，未能分派 {refused} 件。",
                     "{assigned} assigned, {refused} refused."),
    "age_days": ("{n} 天", "{n} days"),
    "age_day": ("{n} 天", "{n} day"),
    "case_ref": ("案件 #{id}", "case #{id}"),
    "filing_failed": ("报送失败", "filing failed"),
    "details": ("详情", "details"),
    "no_alerts": ("没有符合条件的线索。", "No alerts match these filters."),
    "next_page": ("下一页", "next page"),
    # reasons
    "no_reasons": ("无说明", "no reasons recorded"),
    "unknown": ("未知", "unknown"),
    "vs_baseline": ("{value}，基线 {baseline}", "{value} vs baseline {baseline}"),
    "vs_legal": ("{value}，法定期限 {baseline}", "{value}; the legal threshold is {baseline}"),
    "vs_peers": ("{value}，同小区中位数 {baseline}", "{value} vs the estate's median {baseline}"),
    "vs_before": ("{value}，此前为 {baseline}", "{value} vs {baseline} before"),
    "vs_limit": ("{value}，至少需要 {baseline}", "{value}, needs at least {baseline}"),
    "vs_daytime": ("夜间 {value}，全天平均 {baseline}", "{value} at night vs {baseline} over the day"),
    # the alert page
    "alert.title": ("线索 #{id}", "Alert #{id}"),
    "fact.estate": ("小区", "Estate"),
    "fact.score": ("风险分", "Score"),
    "fact.status": ("状态", "Status"),
    "fact.flagged": ("首次 / 最近标记", "First / last flagged"),
    "fact.window": ("数据窗口", "Data window"),
    "fact.rule_version": ("规则版本", "Rule version"),
    "reasons": ("原因", "Reasons"),
    "case": ("案件", "Case"),
    "case.inspector": ("承办人", "Inspector"),
    "case.visit_on": ("上门日期", "Visit on"),
    "case.opened": ("立案", "Opened"),
    "case.filed_to": ("报送住房系统", "Filed to tenancy system"),
    "case.attempts": ("尝试 {n} 次", "attempts {n}"),
    "case.filed_at": ("已报送 {at}", "filed {at}"),
    "case.not_filed": ("尚未报送", "not filed yet"),
    "case.filed_once_confirmed": ("（核实后报送）", " (filed once confirmed)"),
    "case.evidence_sha256": ("证据摘要 SHA-256", "Evidence SHA-256"),
    "case.lead_filed": ("已作为线索报送；此后每项处理都会作为更新报送"
                        "（已报送 {sent} 条，待报送 {waiting} 条）。",
                        "Reported as a lead when it opened; each later decision goes to the tenancy system as"
                        " an update ({sent} sent, {waiting} waiting)."),
    # what can be done next, and why a button is missing (hub/cases/states.py case_guide)
    "next.title": ("下一步：", "Next:"),
    "next.assign": ("由主管分派给巡查员；线索明显不成立的，可直接排除。",
                    "a supervisor assigns the case to an inspector; a lead that is plainly wrong can be"
                    " dismissed now."),
    "next.visit": ("承办人预约上门，核实后确认属实或排除。",
                   "the inspector schedules a visit, then confirms or dismisses."),
    "next.verdict": ("上门核实后，确认属实或排除。", "after the visit, confirm or dismiss."),
    "next.filing_dead": ("报送住房系统失败，需运维人员处理（anju filings requeue）；主管仍可办结。",
                         "sending to the tenancy system failed; an operator must see to it (anju filings"
                         " requeue). A supervisor may still close the case."),
    "next.accept": ("承办人签收案件，之后预约并上门走访。", "the inspector accepts the case, then visits."),
    "next.record_visit": ("上门走访后记录走访完成，再确认属实或排除。",
                          "after the visit, record it, then confirm or dismiss."),
    "next.close_confirmed": ("已核实属实：由主管办结；报送住房系统在后台进行，不影响办结。",
                             "confirmed: a supervisor closes the case; the filing to the tenancy system"
                             " goes on by itself and does not hold it."),
    "next.close_dismissed": ("已排除：由主管结案。在有新证据之前，该单元不会因同类问题再次被标记。",
                             "dismissed: a supervisor closes the case. The unit is not flagged for this"
                             " again until there is new evidence."),
    "next.close_filed": ("住房系统已收到：由主管结案，或住房系统办结后自动结案。",
                         "the tenancy system has it: a supervisor closes the case, or it closes when the"
                         " tenancy system closes it."),
    "next.none": ("已结案，无需再办理。", "closed; nothing more to do."),
    "missing.title": ("不可用的操作", "Actions not available"),
    "why.closed": ("案件已结案", "the case is closed"),
    "why.role": ("您的角色不能执行此操作", "your role does not take this action"),
    "why.assigned_other": ("案件已分派给 {name}", "the case is assigned to {name}"),
    "why.needs_assignee": ("须先分派给巡查员", "the case must be assigned to an inspector first"),
    "why.decided": ("案件已有核实结论", "the case already has its verdict"),
    "why.needs_verdict": ("须先确认属实或排除", "the case needs a verdict (confirm or dismiss) first"),
    "why.already_accepted": ("案件已签收", "the case is accepted already"),
    "why.already_visited": ("走访已记录", "the visit is recorded already"),
    "why.not_overdue": ("案件未超期，无需督办", "the case is not overdue; escalation is for overdue cases"),
    # the workflow's steps, deadline and escalation on the case page (hub/cases/workflow.py)
    "case.stage": ("办理环节", "Step"),
    "case.due": ("办理期限", "Due"),
    "case.overdue": ("已超期", "overdue"),
    "case.escalated": ("已督办 {n} 次", "escalated {n}×"),
    "case.city_no": ("住房系统案件号", "City case number"),
    "action.accept": ("签收", "Accept"),
    "action.record_visit": ("记录走访完成", "Record the visit"),
    "action.escalate": ("督办", "Escalate"),
    "action.escalate_note": ("督办要求", "What is to be done"),
    "trail.repeated": ("共 {n} 次，最近一次 {last}", "{n} times, last {last}"),
    "case.none": ("尚未立案。", "No case opened for this alert yet."),
    "case.actions": ("案件操作", "case actions"),
    "action.assign_to": ("分派给", "Assign to"),
    "action.assign": ("分派", "Assign"),
    "action.visit_on": ("上门日期", "Visit on"),
    "action.note": ("备注", "Note"),
    "action.schedule": ("预约上门", "Schedule visit"),
    "action.found": ("核实情况", "What you found"),
    "action.confirm": ("确认属实", "Confirm"),
    "action.reason": ("排除原因", "Reason"),
    "action.explain": ("说明", "Note"),
    "action.dismiss": ("排除", "Dismiss"),
    "action.close": ("结案", "Close case"),
    "error.forbidden": ("不允许：{detail}", "Not allowed: {detail}"),
    "error.refused": ("无法执行：{detail}", "Cannot do that: {detail}"),
    "refused.role": ("{role}不能{action}。", "your role ({role}) may not {action} a case."),
    "refused.assigned": ("此案件已分派给 {name}，只有承办人可以办理。",
                         "the case is assigned to {name}; only they may act on it."),
    "refused.status": ("案件当前状态为“{status}”，不能{action}。",
                       "the case is {status}, so it cannot {action}."),
    "refused.assignee": ("{name} 不是小区 {estate} 的巡查员。",
                         "{name} is not an inspector of estate {estate}."),
    "refused.visit_date": ("请填写上门日期。", "a visit needs a date."),
    "refused.dismiss_reason": ("请从列表中选择排除原因。", "choose a dismissal reason from the list."),
    "refused.other_note": ("选择“其他”时请写明原因。", "a dismissal for “other” needs a note."),
    "refused.input": ("输入有误，请检查后重试。", "the input is not valid; check it and try again."),
    "refused.not_found": ("案件 {case_id} 不存在。", "case {case_id} not found."),
    "refused.not_overdue": ("案件尚未超期（期限 {due}），不能督办。",
                            "the case is not overdue (due {due}); escalation is for overdue cases."),
    "refused.note_required": ("{action}须写明原因。", "{action} needs a note saying why."),
    "trail": ("办理记录", "Case trail"),
    "trail.none": ("尚无记录。", "Nothing recorded yet."),
    "trail.after_case": ("依据案件 #{id}（{outcome}）之后的新数据",
                         "on new evidence after case #{id} ({outcome})"),
    "trail.superseded": ("出现新证据，另立新案", "new evidence opened a new case"),
    "evidence": ("每日数据", "Daily evidence"),
    "evidence.legend": ("斜线表示当天没有数据（未知，不是零）。",
                        "Hatched days had no data: unknown, not zero."),
    "evidence.none": ("没有证据序列。", "No evidence series recorded."),
    "chart.missing": ("{n} 天无数据", "{n} days without data"),
    "chart.no_data": ("无数据（未知）", "no data (unknown)"),
    "chart.aria": ("{title}，每日，{unit}", "{title}, daily, {unit}"),
    # the audit log
    "audit.title": ("审计日志", "Audit log"),
    "audit.chained": ("每一行都以密钥哈希链接到上一行。校验命令：",
                      "Every row is chained to the one before with a keyed MAC. Check it with:"),
    "audit.object_type": ("对象类型", "Object type"),
    "audit.object_id": ("对象", "Object id"),
    "audit.total": ("共 {n} 条", "{n} rows"),
    "audit.time": ("时间 (UTC)", "Time (UTC)"),
    "audit.actor": ("操作人", "Actor"),
    "audit.action": ("操作", "Action"),
    "audit.object": ("对象", "Object"),
    "audit.detail": ("详情", "Detail"),
    "audit.older": ("更早", "older"),
}


def message(lang: Language, key: str, **fields: object) -> str:
    """The message ``key`` in ``lang`` with its fields filled in; the key itself when unknown."""
    texts = MESSAGES.get(key) or FIELD_MESSAGES.get(key) or STATUS_MESSAGES.get(key)
    if texts is None:
        return key
    text = texts[LANGUAGES.index(lang)]
    return text.format(**fields) if fields else text
