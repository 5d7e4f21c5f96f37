"""The household pages' own texts (中文, English); the shared ones (labels, reasons, charts) come from
``hub.api.i18n`` and ``hub.api.labels`` so that a household reads the same words as its inspector."""

from __future__ import annotations

from anju.hub.api.i18n import LANGUAGES, Language

MESSAGES: dict[str, tuple[str, str]] = {
    "title": ("我家的核查事项", "Cases about my home"),
    "intro": ("这里可以看到关于您家的每一件核查事项：理由、证据、处理经过和查看过的人。您可以申辩。",
              "Every case about your home: its reasons, evidence, every step and who looked at it. You may"
              " answer."),
    "login.title": ("住户登录", "Household sign-in"),
    "login.phone": ("手机号（租约上登记的）", "Phone number (as on the lease)"),
    "login.send": ("发送验证码", "Text me a code"),
    "login.code": ("短信验证码", "Code from the text message"),
    "login.submit": ("登录", "Sign in"),
    "login.sent": ("如果该号码登记在租约上，验证码已发送，{minutes} 分钟内有效。",
                   "If this number is on a lease, a code was sent; it is valid for {minutes} minutes."),
    "login.wrong": ("验证码不对或已过期。", "Wrong or expired code."),
    "login.limited": ("请求太频繁，请稍后再试。", "Too many codes asked for; try again later."),
    "login.unsent": ("短信暂时发不出去，请稍后再试。",
                     "The text could not be sent just now; try again later."),
    "logout": ("退出", "Sign out"),
    "unit": ("房屋", "Home"),
    "signed_in_as": ("{name}（{relation}）", "{name} ({relation})"),
    "relation.tenant": ("承租人", "tenant of record"),
    "relation.member": ("家庭成员", "household member"),
    "role.system": ("系统", "system"),
    "system.detector": ("线索检测", "lead detection"),
    "system.notify": ("短信告知", "text notices"),
    "system.tenancy": ("住房系统", "tenancy system"),
    "system.welfare": ("关怀探访", "welfare visits"),
    "system.cli": ("管理员工具", "admin tool"),
    "system.auth": ("登录管理", "sign-in"),
    "role.tenant": ("承租人", "tenant of record"),
    "role.member": ("家庭成员", "household member"),
    "role.anonymous": ("未登录", "not signed in"),
    "no_cases": ("您家目前没有核查事项。", "There is no case about your home."),
    "open_case": ("查看", "Open"),
    "case.title": ("核查事项 #{id}", "Case #{id}"),
    "back": ("← 我家的事项", "← my cases"),
    "state": ("状态", "State"),
    "opened": ("立案时间", "Opened"),
    "visit": ("约定上门", "Home visit"),
    "answer_by": ("申辩截止", "Answer by"),
    "answer_waiting": ("告知短信尚未送达，申辩期从送达起算",
                       "The notice has not reached you yet; your answer period starts then"),
    "answer_none": ("—", "—"),
    "held": ("在申辩期结束前（{at}）不会报送执法",
             "Not filed for enforcement before your answer period ends ({at})"),
    "override": ("主管已记录提前报送的理由：{why}", "A supervisor recorded why it is filed early: {why}"),
    "reasons": ("为什么会有这件事（与巡查员看到的理由相同）", "Why (the same reasons the inspector reads)"),
    "evidence": ("您家的每日数据", "Your home's daily data"),
    "evidence.note": ("只显示您家自己的电、水、气和您家登记成员的进门次数。"
                      "斜线表示当天没有数据（未知，不是零）。",
                      "Only your own meters and your household's own entries. Hatched days had no data:"
                      " unknown, not zero."),
    "trail": ("处理经过（谁、何时、做了什么）", "Every step (who, when, what)"),
    "viewers": ("谁查看过本事项", "Who viewed this case"),
    "viewers.none": ("还没有人查看过。", "No one has viewed it yet."),
    "viewer.times": ("{n} 次，最近 {at}", "{n} times, last {at}"),
    "answers": ("您的申辩", "Your answers"),
    "answer.form": ("申辩", "Answer"),
    "answer.reason": ("原因", "Reason"),
    "answer.text": ("说明（可选）", "Explanation (optional)"),
    "answer.photos": ("证明材料照片（最多 {n} 张，每张不超过 {mb} MB）",
                      "Photos of documents (up to {n}, {mb} MB each)"),
    "answer.submit": ("提交申辩", "Send my answer"),
    "answer.sent": ("申辩已提交，巡查员会看到。", "Your answer was sent; the inspector will see it."),
    "answer.closed": ("本事项已不接受申辩。", "This case no longer takes answers."),
    "answer.photo_count": ("{n} 张照片", "{n} photos"),
    "refused.case_decided": ("本事项已处理完毕，不能再申辩。",
                             "The case is decided; it takes no more answers."),
    "refused.period_over": ("申辩期已过。", "The answer period is over."),
    "refused.reason": ("请选择一个原因。", "Choose a reason."),
    "refused.text": ("选“其他”时请写说明（最多 2000 字）。",
                     "With “other”, write an explanation (2000 characters at most)."),
    "refused.too_many_photos": ("照片太多。", "Too many photos."),
    "refused.photo_too_large": ("照片太大。", "A photo is too large."),
    "refused.photo_type": ("只接受 JPEG、PNG 或 WebP 照片。", "Only JPEG, PNG or WebP photos."),
    "welfare.title": ("关怀探访", "Welfare visit"),
    "welfare.intro": ("如果家中有老人或需要帮助，可以申请社区关怀探访。这与核查无关，不会报送执法。",
                      "If someone at home is elderly or needs help, ask for a welfare visit. It has nothing"
                      " to do with any case and is never filed for enforcement."),
    "welfare.note": ("想告诉社区的话（可选）", "Anything the community should know (optional)"),
    "welfare.ask": ("申请关怀探访", "Ask for a welfare visit"),
    "welfare.asked": ("已申请关怀探访（{day}），社区会联系您。",
                      "Welfare visit asked for ({day}); the community will contact you."),
    "notice.opened": ("告知短信", "notice sent"),
    "queue.answered": ("住户已申辩", "household answered"),
    "staff.answers": ("住户申辩", "The household's answers"),
    "staff.no_answers": ("住户尚未申辩。", "No answer from the household yet."),
    "staff.held": ("住户申辩期内暂不报送执法，最早 {at}。", "Not filed for enforcement during the household's"
                   " answer period: {at} at the earliest."),
    "staff.override_why": ("提前报送的理由（至少 10 个字，住户可见）",
                           "Why it must be filed now (at least 10 characters; the household sees it)"),
    "staff.override": ("记录理由并提前报送", "Record why and file now"),
    "staff.overridden": ("{name} 已记录提前报送的理由：{why}",
                         "{name} recorded why it is filed early: {why}"),
    "staff.refused.role": ("只有主管或管理员可以提前报送。", "Only a supervisor or an admin may file early."),
    "staff.refused.why": ("理由至少 10 个字。", "Give a reason of at least 10 characters."),
    "staff.refused.not_confirmed": ("只有已核实的案件才会报送。", "Only a confirmed case is filed."),
    "privacy": ("本页不显示其他住户的数据、陌生人记录、摄像头数据、模型内部数据或巡查员的内部备注。",
                "This page never shows other households' data, strangers, camera data, model internals or"
                " inspectors' private notes."),
}


def household_message(lang: Language, key: str, **fields: object) -> str:
    """A household page text in ``lang`` with its fields filled in; the key itself when unknown."""
    texts = MESSAGES.get(key)
    if texts is None:
        return key
    text = texts[LANGUAGES.index(lang)]
    return text.format(**fields) if fields else text
