"""Labels (中文, English) of the pages' data, and reasons in plain words in the chosen language; pure.

A reason is phrased from its structured values (``code``, ``value``, ``baseline``, ``unit``), not from
the detector's stored ``text``, which is English: that text is only the fallback for a code not known
here, and the page shows it as the reason's tooltip.
"""

from __future__ import annotations

from collections.abc import Mapping

from anju.hub.api.charts import format_number
from anju.hub.api.i18n import LANGUAGES, Language, message
from anju.hub.cases.errors import Refusal
from anju.hub.cases.schemas import Reason
from anju.hub.cases.states import DISMISS_REASONS

Table = dict[str, tuple[str, str]]

ALERT_KINDS: Table = {
    "vacancy": ("空置", "vacancy"),
    "sublet": ("转租", "sublet"),
    "group_rent": ("群租", "group renting"),
    "change_of_use": ("改变用途", "change of use"),
    "welfare": ("关怀探访", "welfare check"),
}

ALERT_STATUSES: Table = {
    "open": ("待处理", "open"),
    "closed": ("已关闭", "closed"),
}

CASE_STATUSES: Table = {
    "open": ("待分派", "open"),
    "assigned": ("已分派", "assigned"),
    "accepted": ("已签收", "accepted"),
    "visit_scheduled": ("已约上门", "visit scheduled"),
    "visited": ("已走访", "visited"),
    "confirmed": ("已核实", "confirmed"),
    "dismissed": ("已排除", "dismissed"),
    "filed": ("已报送", "filed"),
    "closed": ("已结案", "closed"),
}

# The bureau's step a case stands at (hub/cases/workflow.py STAGE_OF).
CASE_STAGES: Table = {
    "opened": ("待派单", "awaiting dispatch"),
    "assigned": ("派单", "assigned"),
    "accepted": ("签收", "accepted"),
    "visit": ("走访", "visit"),
    "verified": ("核实", "verified"),
    "closed": ("办结", "closed"),
}

FILING_STATES: Table = {
    "pending": ("待报送", "pending"),
    "sent": ("已报送", "sent"),
    "dead": ("报送失败", "failed, needs attention"),
}

# What the audit trail's action codes mean, for the alert page (the audit log shows the codes too).
AUDIT_ACTIONS: Table = {
    "alert.opened": ("发现线索", "alert raised"),
    "alert.reflagged": ("再次标记", "flagged again"),
    "alert.closed": ("线索关闭", "alert closed"),
    "case.opened": ("立案", "case opened"),
    "case.realerted": ("新线索并入本案", "new alert attached"),
    "case.assign": ("分派", "assigned"),
    "case.accept": ("签收", "accepted"),
    "case.record_visit": ("走访完成", "visit recorded"),
    "case.escalate": ("督办", "escalated"),
    "case.overdue": ("超期", "overdue"),
    "tenancy.requeued": ("重新排队报送", "filing re-queued"),
    "tenancy.found": ("在住房系统查到已报送", "found already filed in the tenancy system"),
    "case.schedule_visit": ("预约上门", "visit scheduled"),
    "case.confirm": ("确认属实", "confirmed"),
    "case.dismiss": ("排除", "dismissed"),
    "case.close": ("结案", "closed"),
    "case.filed": ("已报送住房系统", "filed to the tenancy system"),
    "case.tenancy_status": ("住房系统状态变更", "status changed in the tenancy system"),
    "tenancy.queued": ("等待报送", "queued for filing"),
    "tenancy.dead": ("报送失败", "filing failed"),
    "tenancy.update_queued": ("等待报送处理进展", "update queued for the tenancy system"),
    "tenancy.update_sent": ("处理进展已报送住房系统", "update sent to the tenancy system"),
    "user.added": ("添加用户", "user added"),
    "user.estates": ("调整负责小区", "estates changed"),
    "user.login": ("登录", "signed in"),
    "user.logout": ("退出", "signed out"),
    "model.trained": ("训练核查结论模型", "verdict model trained"),
    # The household's side (hub/household): notices, answers, views, early filing, welfare.
    "household.notice_queued": ("生成告知短信", "notice to the household queued"),
    "household.notified": ("告知短信已送达", "household notified by text message"),
    "household.notify_failed": ("告知短信发送失败", "notice to the household failed"),
    "household.answered": ("住户申辩", "household answered"),
    "case.viewed": ("查看案件", "viewed the case"),
    "case.filing_override": ("主管记录提前报送理由", "supervisor recorded why it is filed early"),
}

# Statuses the city's tenancy system reports back (device_sims/tenancy.py plays it).
TENANCY_STATUSES: Table = {
    "filed": ("已受理", "filed"),
    "under_review": ("审核中", "under review"),
    "closed": ("已办结", "closed"),
    "moved_out": ("住户已搬离", "household moved out"),
}

# The workflow's refusal codes, each worded by the message ``refused.<code>`` (hub/api/i18n.py).
REFUSAL_CODES = frozenset(r.value for r in Refusal)

# Why a lead was dismissed; the table itself belongs to the case workflow.
DISMISSAL_REASONS: Table = DISMISS_REASONS

# The case actions, as a refusal names them: (中文, English).
CASE_ACTIONS: Table = {
    "assign": ("分派", "assign"),
    "accept": ("签收", "accept"),
    "schedule_visit": ("预约上门", "schedule the visit"),
    "record_visit": ("记录走访", "record the visit"),
    "escalate": ("督办", "escalate"),
    "confirm": ("确认属实", "confirm"),
    "dismiss": ("排除", "dismiss"),
    "close": ("结案", "close"),
}

# Units of reasons' values and charts: (中文, English).
UNITS: Table = {
    "kWh/day": ("千瓦时/天", "kWh/day"),
    "m3/day": ("立方米/天", "m³/day"),
    "m³/day": ("立方米/天", "m³/day"),
    "m3/h": ("立方米/小时", "m³/h"),
    "m³/h": ("立方米/小时", "m³/h"),
    "entries": ("次", "entries"),
    "entries/day": ("次/天", "entries/day"),
    "days": ("天", "days"),
    "tracks": ("人", "people"),
    "strangers/day": ("人/天", "strangers/day"),
    "per day": ("次/天", "per day"),
    "hours/day": ("小时/天", "hours/day"),
    "people/day": ("人/天", "people/day"),
}

# Units that are shares (0..1), shown as percentages: what the share is of.
SHARES: Table = {
    "share of days": ("天数占比", "of days"),
    "share of gate days": ("门禁有记录日占比", "of gate days"),
    "share of units less unusual": ("的单元不如它异常", "of units less unusual"),
    "probability confirmed": ("核实属实的概率", "chance a visit confirms"),
}

# Each reason code the detectors give (models/rules.py), in plain words, and how its value compares
# with its baseline (a message key of hub/api/i18n.py; None: the reason has no comparison).
REASONS: dict[str, tuple[str, str, str | None]] = {
    "no_tenant_entries": (
        "登记住户几乎没有进门记录",
        "Registered tenants hardly ever entered",
        "vs_before",
    ),
    "electricity_base_load": (
        "用电只剩待机水平",
        "Electricity at base load",
        "vs_before",
    ),
    "water_constant_flow": (
        "无人进出却昼夜流水：空房漏水",
        "Water flows day and night with nobody entering: a leak in an empty flat",
        "vs_daytime",
    ),
    "water_near_zero": (
        "几乎不用水",
        "Almost no water used",
        "vs_before",
    ),
    "water_unknown": (
        "用水数据缺得太多，只按用电判断",
        "Water use unknown on too many days: judged on electricity alone",
        "vs_limit",
    ),
    "peer_electricity": (
        "用电远低于同小区其他单元",
        "Far less electricity than the estate's other units",
        "vs_peers",
    ),
    "idle_streak": (
        "连续闲置",
        "Idle days in a row",
        "vs_legal",
    ),
    "electricity_in_use": (
        "正常用电：有人居住",
        "Electricity in normal use: someone lives here",
        "vs_baseline",
    ),
    "water_in_use": (
        "正常用水",
        "Water in normal use",
        "vs_baseline",
    ),
    "tenant_presence_ended": (
        "登记住户不再出现",
        "Registered tenants stopped appearing",
        "vs_before",
    ),
    "recurring_strangers": (
        "登记住户消失后，楼里反复出现陌生面孔",
        "Unrecognised faces seen again and again since the registered tenants stopped appearing",
        "vs_baseline",
    ),
    "water_level_changed": (
        "登记住户不再出现时，用水水平随之改变：像是另一户人家",
        "The flat's water changed as the registered tenants stopped appearing: another household's use",
        "vs_before",
    ),
    "water_grown": (
        "用水达本户最节省四周的数倍，且已持续六周：住的人比原来多得多（疑似群租）",
        "Water several times the household's own most frugal four weeks, for six weeks now: far more people "
        "live here than before (a group rental?)",
        "vs_before",
    ),
    "group_moved_in": (
        "用水翻倍之时，一批陌生面孔同时出现并常住，人数多于租约所列：疑似群租（登记住户可能仍在）",
        "A group of unrecognised faces, more than the lease lists, came as the flat's water doubled, and "
        "stayed: a group rental (the registered tenants may still live there)",
        "vs_baseline",
    ),
    "water_crowding": (
        "用水远超同户籍人数家庭：实际居住人数多于租约（疑似群租）",
        "Water far above households of the same registered size: more people live here than the lease lists",
        "vs_baseline",
    ),
    "tenants_present": (
        "登记住户本人仍刷脸进出：用水已达群租水平，而非多住一人",
        "The registered tenants' own faces are still seen: the water is a group's, not one more person's",
        "vs_before",
    ),
    "tenants_absent": (
        "登记住户已不在门禁出现（至多偶尔来访）：住在这里的是别人",
        "The registered tenants no longer pass the gate (drop-bys at most): others live here",
        "vs_before",
    ),
    "tenants_card_only": (
        "只见登记住户的卡或密码进出，从未识别到本人面孔：持卡人不一定是住户",
        "Only the tenants' card or code is used, their faces never recognised: its holder may not be them",
        "vs_before",
    ),
    "recurring_strangers_near": (
        "本楼（层）反复出现的陌生面孔（背景信息）",
        "Unrecognised faces that recur at the unit's building or floor (context)",
        "vs_baseline",
    ),
    "tenants_absent_on_record": (
        "自有记录以来登记住户几乎未进出（至多偶尔来访）",
        "Since records began, registered tenants entered at most to drop by",
        "vs_baseline",
    ),
    "settled_strangers": (
        "自记录第一周起本层即有陌生面孔常住，且本层无其他住户缺席",
        "Unrecognised faces live on the unit's floor since the first week of records, and no other flat "
        "there lacks its tenants",
        "vs_baseline",
    ),
    "peer_anomaly": (
        "与同小区其他单元相比明显异常",
        "Unusual compared with the estate's other units",
        "vs_baseline",
    ),
    "verdict_model": (
        "按以往核查结论学得的模型：核实属实的可能性",
        "A model learned from inspectors' past verdicts: how likely a visit confirms this",
        "vs_baseline",
    ),
    "new_lease": (
        "新签租约，时间太短无法判断",
        "New lease: too recent to judge",
        None,
    ),
    "low_coverage": (
        "数据太少，无法判断（缺的天数是未知，不是零）",
        "Too little data to judge (missing days are unknown, not empty)",
        "vs_limit",
    ),
    "gate_silent": (
        "门禁很少上报，分不清是住户不在还是门禁故障",
        "The gate reported too rarely to tell absence from a gate outage",
        "vs_limit",
    ),
    "idle_streak_short": (
        "连续闲置天数不够长：可能是外出",
        "Idle for too few days in a row: could be travel",
        "vs_limit",
    ),
    "no_new_faces": (
        "住户不再刷门禁，但没有新面孔：可能走了其他入口",
        "Tenants stopped using the gate but no new faces appeared: likely another entrance",
        None,
    ),
    "no_presence_change": (
        "住户很少刷门禁，但看不出何时离开：可能一直走其他入口",
        "Tenants rarely use the gate, with no time at which they stopped: likely another entrance",
        None,
    ),
    "drop_by_visits": (
        "偶尔短暂回来（少量用水、开灯后又无人），不算有人居住",
        "Short visits (a little water and light, then nothing again) do not make the flat lived in",
        None,
    ),
    "flat_lived_in": (
        "房内有人生活（每天用水、做饭、用电高于待机）",
        "The flat is lived in (water, cooking and electricity above standby most days)",
        "vs_limit",
    ),
    "tenant_faces_vanished": (
        "登记住户的人脸不再出现，但其门卡或密码仍每天在用：可能转借他人",
        "The registered tenants' faces vanished while their card or code is still used: possibly lent out",
        "vs_before",
    ),
    "enrolled_face_unseen": (
        "登记住户已在门禁录入人脸，却从未被识别，而其门卡或密码每天在用：可能转借他人",
        "The registered tenants enrolled their faces at the gate, yet none is ever recognised while their "
        "card or code is used every day: possibly lent out",
        "vs_baseline",
    ),
}


def label(table: Table, key: str | None, lang: Language) -> str:
    """The label of ``key`` in ``lang``; the key itself when the table does not know it, a dash for none."""
    if not key:
        return "—"
    texts = table.get(key)
    return texts[LANGUAGES.index(lang)] if texts else key


def quantity(value: float | None, unit: str | None, lang: Language) -> str:
    """A value with its unit in plain words (shares as percentages); ``未知``/``unknown`` for no value."""
    if value is None:
        return message(lang, "unknown")
    if unit in SHARES:
        return f"{format_number(value * 100)}% {label(SHARES, unit, lang)}"
    text = format_number(value)
    if not unit:
        return text
    return f"{text} {label(UNITS, unit, lang)}"


def reason_text(reason: Reason, lang: Language) -> str:
    """What the reason says, in ``lang`` for a known code; else the detector's own words, else its code."""
    known = REASONS.get(reason.code)
    if known is not None:
        zh, en, _ = known
        return zh if lang == "zh" else en
    return reason.text or reason.code


def reason_comparison(reason: Reason, lang: Language) -> str:
    """The reason's measured value against its baseline, e.g. ``0.8 kWh/day vs baseline 6.1 kWh/day``."""
    if reason.value is None and reason.baseline is None:
        return ""
    known = REASONS.get(reason.code)
    if known is not None and known[2] is None:
        return ""
    extra = reason.model_extra or {}
    if "days_of" in extra:  # a count of days taken from a charted series: out of how many known days
        measured = day_count(reason.value, extra["days_of"], lang)
        if reason.baseline is None:
            return measured
        before = day_count(reason.baseline, extra.get("days_of_before", 0), lang)
        return message(lang, "vs_before", value=measured, baseline=before)
    measured = quantity(reason.value, reason.unit, lang)
    if reason.baseline is None:
        return measured
    key = known[2] if known is not None and known[2] is not None else "vs_baseline"
    return message(lang, key, value=measured, baseline=quantity(reason.baseline, reason.unit, lang))


def day_count(value: float | None, of: object, lang: Language) -> str:
    """``k`` days out of ``n`` known days, e.g. ``21 天中 0 天`` / ``0 of 21 days``."""
    if value is None:
        return message(lang, "unknown")
    return message(lang, "days_of", k=format_number(value, integer=True), n=of)


def refusal(code: str, params: Mapping[str, object], lang: Language) -> str:
    """Why the workflow refused an action, in ``lang``, from its code (``anju.hub.cases.errors.Refusal``) and
    parameters; a code not in the catalogue (a malformed date, an unknown action) as "check your input"."""
    if code not in REFUSAL_CODES:
        return message(lang, "refused.input")
    fields = dict(params)
    if "role" in fields:
        fields["role"] = message(lang, f"role.{fields['role']}")
    if "action" in fields:
        fields["action"] = label(CASE_ACTIONS, str(fields["action"]), lang)
    if "status" in fields:
        fields["status"] = label(CASE_STATUSES, str(fields["status"]), lang)
    return message(lang, f"refused.{code}", **fields)
