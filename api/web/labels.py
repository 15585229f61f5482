"""Words for the codes the pages show (zh, en), one table per kind of code, so that no page
shows a raw code such as `publication_stopped` or `credit_office`. Tables that belong to the
domain (record statuses, source categories) live in `states/` and are only gathered here."""

from __future__ import annotations

from collections.abc import Mapping

from states.records import SOURCE_LABELS, STATUS_LABELS

Table = Mapping[str, tuple[str, str]]

KIND_LABELS: Table = {
    "enterprise": ("企业或其他组织", "enterprise or other organisation"),
    "government": ("机关事业单位", "government body"),
    "civil_servant": ("公务员", "civil servant"),
    "person": ("自然人", "natural person"),
}
SEVERITY_LABELS: Table = {
    "minor": ("轻微", "minor"),
    "general": ("一般", "general"),
    "serious": ("严重", "serious"),
}
# Roles, and the notice recipients that are not roles (assignee, determining unit).
ROLE_LABELS: Table = {
    "applicant": ("申请人", "applicant"),
    "handler": ("经办人", "case handler"),
    "reviewer": ("复核人", "reviewer"),
    "head": ("部门负责人", "department head"),
    "credit_office": ("信用管理部门", "credit office"),
    "admin": ("管理员", "administrator"),
    "system": ("系统", "system"),
    "lead_department": ("牵头部门", "lead department"),
    "task_group": ("专责小组", "special task group"),
    "leading_group": ("领导小组", "leading group"),
    "assignee": ("经办人", "case handler"),
    "determining_unit": ("认定单位", "determining unit"),
}
# Events that are not a procedure's triggers: the clock's and the case file's own.
EVENT_LABELS: Table = {
    "migrated": ("转入新版办理程序", "moved to a new procedure version"),
    "submit": ("提交申请", "application filed"),
    "assign": ("分派经办人", "assigned"),
    "attach": ("上传材料", "documents attached"),
    "deadline_reminder": ("期限提醒", "deadline reminder"),
    "deadline_expired": ("期限届满", "deadline expired"),
    "deadline_escalated": ("超期督办", "overdue, escalated"),
    "deadline_recomputed": ("期限重新计算", "deadlines recomputed"),
    "notice_delivered": ("告知书已送达", "notice delivered"),
    "notice_undelivered": ("告知书尚未送达", "notice not yet delivered"),
    "deadline_met": ("已按期完成", "deadline met"),
    "access_code_reissued": (
        "查询码已重新发送（申请人申请）",
        "access code sent again (at the applicant's request)",
    ),
}
# Keys of a case's data and of events that the engine sets, not a procedure's fields.
DATA_LABELS: Table = {
    "case_no": ("案件编号", "case number"),
    "filed_on": ("收件日", "filed on"),
    "extension_requested": ("已申请延期", "extension requested"),
    "extensions": ("已批准延期次数", "extensions approved"),
    "supplement_requested": ("已要求补正", "missing documents requested"),
    "stage_supplement_requested": ("核查中已要求补充材料", "material requested in verification"),
    "decided_by": ("原决定审核人", "decision approved by"),
    "notice": ("告知书", "notice"),
    "channel": ("送达方式", "channel"),
    "name": ("姓名", "name"),
    "role": ("角色", "role"),
    "applicant": ("申请人", "applicant"),
    "assignee_id": ("经办人编号", "handler's id"),
    "assignee": ("经办人", "handler"),
    "by": ("操作人", "by"),
    "attachment_id": ("附件编号", "attachment id"),
    "filename": ("文件名", "file name"),
    "sha256": ("SHA-256", "SHA-256"),
    "size": ("大小（字节）", "size (bytes)"),
    "timer": ("期限", "deadline"),
    "label": ("名称", "name"),
    "due": ("到期日", "due"),
    "state": ("状态", "state"),
    "step": ("督办级次", "escalation step"),
    "notify": ("通知对象", "notified"),
    "deadlines": ("期限", "deadlines"),
    "approved_by": ("审定人", "approved by"),
    "kind": ("类型", "kind"),
    "identifier": ("证件号码", "identifier"),
    "anonymous": ("匿名", "anonymous"),
    "email": ("电子邮箱", "email"),
    "phone": ("联系电话", "phone"),
    # A record's content.
    "summary": ("摘要", "summary"),
    "measures": ("惩戒措施", "measures"),
    "facts": ("失信事实", "facts"),
    "legal_basis": ("依据", "legal basis"),
    "publicity_months": ("公示期（月）", "publicity period (months)"),
    "identification_case": ("认定案件", "identification case"),
    "rectification": ("整改", "rectification"),
    "requirements": ("整改要求", "requirements"),
    "status": ("状态", "status"),
    "accepted_on": ("验收日期", "accepted on"),
    "measures_lifted": ("惩戒措施已解除", "measures lifted"),
    "repaired_on": ("修复日期", "repaired on"),
    "repair_revoked_on": ("撤销修复日期", "repair revoked on"),
    "corrected_text": ("更正内容", "corrected text"),
    "supplement_text": ("补充内容", "added text"),
    "last_decision": ("最近一次异议处理", "last objection decision"),
    "objection_annotations": ("异议记载", "objections noted"),
    "reputation_restored": ("恢复信誉", "reputation restored"),
    "on": ("日期", "on"),
    "outcome": ("处理结果", "outcome"),
    "reasons": ("理由", "reasons"),
}
# Where a record's rectification stands (content.rectification.status).
RECTIFICATION_LABELS: Table = {
    "required": ("待整改", "to be rectified"),
    "accepted": ("整改已验收", "rectification accepted"),
}
DELIVERY_LABELS: Table = {
    "pending": ("待发送", "pending"),
    "sent": ("已发送", "sent"),
    "dead": ("发送失败", "failed"),
}
CHANNEL_LABELS: Table = {
    "email": ("电子邮件", "email"),
    "sms": ("短信", "SMS"),
    "inapp": ("查询页面", "status page"),
    "webhook": ("接口推送", "webhook"),
    "platform": ("信用平台", "credit platform"),
    "log": ("日志", "log"),
}
LANG_LABELS: Table = {"zh": ("中文", "Chinese"), "en": ("英文", "English")}
# The access log: what a staff member looked at, and where.
ACCESS_LABELS: Table = {
    "case": ("查看案件", "viewed the case"),
    "attachment": ("下载附件", "downloaded an attachment"),
    "notice": ("查看通知书", "viewed a notice"),
    "record": ("查看信用记录", "viewed a record"),
    "search": ("按身份信息查询", "searched by identity"),
}
VIA_LABELS: Table = {"console": ("工作台", "console"), "api": ("接口", "API")}
TOKEN_STATE_LABELS: Table = {
    "live": ("有效", "live"),
    "expired": ("已过期", "expired"),
    "revoked": ("已吊销", "revoked"),
    "rotated": ("已轮换", "rotated"),
    "user_disabled": ("用户已停用", "user disabled"),
}
DEPT_KIND_LABELS: Table = {
    "credit_office": ("信用管理部门", "credit office"),
    "unit": ("认定单位", "determining unit"),
}
# The jurisdictions whose rule sets ship with redress (states/procedures/*/<name>-v*.yaml).
JURISDICTION_LABELS: Table = {
    "default": ("通用（默认规则）", "general (default rules)"),
    "shanghai": ("上海市", "Shanghai"),
    "shandong": ("山东省", "Shandong"),
    "henan": ("河南省", "Henan"),
    "zhejiang": ("浙江省", "Zhejiang"),
    "shenzhen": ("深圳市", "Shenzhen"),
}

TABLES: Mapping[str, Table] = {
    "record_status": STATUS_LABELS,
    "source": SOURCE_LABELS,
    "severity": SEVERITY_LABELS,
    "kind": KIND_LABELS,
    "role": ROLE_LABELS,
    "event": EVENT_LABELS,
    "delivery": DELIVERY_LABELS,
    "channel": CHANNEL_LABELS,
    "lang": LANG_LABELS,
    "jurisdiction": JURISDICTION_LABELS,
    "access": ACCESS_LABELS,
    "via": VIA_LABELS,
    "token_state": TOKEN_STATE_LABELS,
    "dept_kind": DEPT_KIND_LABELS,
}


def label(table: Table, code: str, lang: str) -> str:
    """The word for `code` in `lang`; the code itself if the table has none."""
    pair = table.get(code)
    if pair is None:
        return code
    return pair[1] if lang == "en" else pair[0]
