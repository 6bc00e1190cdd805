"""Paid task likes: token payments followed within seconds by a like.

Workers pay the merchant a token amount, then like its content at once.
Honest buyers pay real, varied amounts and like minutes later, if at all;
honest coupon campaigns like first and pay afterwards. The rule fires on
a merchant (or one of its targets) when enough distinct accounts made a
prompt pay->like pair with a token amount; sooner when those pairs also
share one amount, or are nearly all token pairs, with a short delay; at
the second such account when both paid likes fall within the short window
(a task's first workers arrive minutes apart; a drip's pairs too, while a
shop's rare honest tiny payment followed by a prompt like does not come
twice in minutes); on non-token pairs when they are mechanical: one
amount and near-constant delays of seconds (honest buyers of a one-price
flash sale who like the shop do so minutes later); and on tasks that have
their workers like first and pay a token fee after: several accounts in the
window paid a token amount within two minutes of liking, and they made a
large share of the likes and of the token payments (a busy shop's browsing
buyers pay a token after a like now and then: a few in a thousand of its
likes; a one-yuan deal's buyers mostly pay without a like; an honest
like-to-unlock coupon's buyers pay for goods, minutes later). Liking first
and paying within two minutes counts at any amount too (a coupon price, a
real-looking one) when it is half of the likes and most of the payments in
the window: honest shops whose viewers like and then buy stay far below.

A token payment buys nothing but the like, so the first path also counts
accounts that liked up to three minutes after paying (``token_delay``): a
camouflaged ring's members like a minute or two after paying, between
other likes; its conversion is counted within the same three minutes.

Every token path is gated on *conversion*: the share of the merchant's
token payers (over ``long_window``) who liked within seconds of paying.
A task's workers pay only to like, so nearly all convert; a game shop's
honest 1-CNY top-ups or a streamer's tips are followed by a prompt like now
and then, and their payers' other top-ups make the share low.

Examples
--------
>>> rule = PaidLikes()
>>> x = {"token_users": 12, "token_share": 1.0, "pair_users": 12, "token_age": 3.0,
...      "token_amount_top_share": 1.0, "token_delay_median": 8.0, "token_conversion": 1.0,
...      "token_users_slow": 12, "token_conversion_slow": 1.0}
>>> round(rule.score_one(x), 3)
0.625
>>> [r.code for r in rule.explain(x)]
['token_paid_likers_slow', 'token_share', 'token_conversion_slow', 'last_token_like_age']
>>> ring = {**x, "token_users": 2, "token_delay_median": 70.0, "token_users_slow": 5,
...         "token_conversion": 0.2, "token_conversion_slow": 0.6}  # liked 1-2.5 min on
>>> rule.score_one(ring) >= 0.5
True
>>> game_shop = {**x, "token_users": 3, "token_users_w": 2, "token_conversion": 0.3,
...              "token_users_slow": 3, "token_conversion_slow": 0.3}
>>> rule.score_one(game_shop)  # most of its 98-fen top-ups are not followed by a like
0.0
>>> rule.score_one({"token_users": 1, "token_share": 1.0}) < 0.5
True
>>> varied = {"token_users": 3, "token_share": 1.0, "token_amount_top_share": 0.34,
...           "token_delay_median": 20.0, "token_age": 5.0,
...           "token_conversion": 1.0}  # amounts 1-10 fen, liked at once
>>> [r.code for r in rule.explain(varied)][:3], rule.score_one(varied) >= 0.5
(['token_paid_likers', 'token_share', 'token_prompt_delay'], True)
>>> first_two = {"token_users": 2, "token_users_w": 2, "token_share": 1.0,
...              "token_delay_median": 15.0, "token_age": 1.0, "token_conversion": 1.0}
>>> [r.code for r in rule.explain(first_two)][0], rule.score_one(first_two) >= 0.5
('token_paid_likers_recent', True)
>>> rule.score_one({**first_two, "token_users_w": 1}) < 0.5  # the other an hour ago
True
>>> like_first = {"rev_users_w": 4, "rev_share_w": 0.6, "rev_conversion": 0.9}
>>> [r.code for r in rule.explain(like_first)][:2], rule.score_one(like_first) >= 0.5
(['like_then_token_payers', 'like_then_token_share'], True)
>>> rule.score_one({**like_first, "rev_share_w": 0.01}) < 0.5  # a busy shop's buyers
True
>>> rule.score_one({**like_first, "rev_conversion": 0.05}) < 0.5  # a one-yuan deal
True
>>> coupon_price = {"rev_any_users_w": 6, "rev_any_share_w": 0.8, "rev_any_conversion": 0.9}
>>> [r.code for r in rule.explain(coupon_price)], rule.score_one(coupon_price) >= 0.5
(['like_then_payers', 'like_then_pay_share', 'like_then_pay_conversion'], True)
>>> rule.score_one({**coupon_price, "rev_any_share_w": 0.1}) < 0.5  # viewers who then buy
True
"""

from __future__ import annotations

from typing import ClassVar

from detectors.base import Cond, Rule

_TOKEN_USERS = "accounts that paid a token amount and liked within seconds"
_TOKEN_SHARE = "share of prompt pay->like pairs with a token amount"
#: the pairs add up over hours (slow drips), but only a campaign still running alerts
_FRESH = Cond("pair_age", "<=", 300.0, "last_paid_like_age", "seconds since the last paid like")
_FRESH_TOKEN = Cond("token_age", "<=", 300.0, "last_token_like_age",
                    "seconds since the last token-paid like")
_FEW_TOKEN_USERS = Cond("token_users", ">=", 3, "token_paid_likers", _TOKEN_USERS)
_PROMPT_TOKEN = Cond("token_delay_median", "<=", 60.0, "token_prompt_delay",
                     "median seconds from token payment to like")
_CONVERSION = "share of the merchant's token payers who liked within seconds of paying"
#: honest small purchases (game top-ups, tips) are now and then followed by a
#: like; a task's workers pay only to like
_CONVERTED = Cond("token_conversion", ">=", 0.8, "token_conversion", _CONVERSION, gate=True)
_TOKEN = (  # counting those who liked within minutes: a ring's members wait before liking
    Cond("token_users_slow", ">=", 5, "token_paid_likers_slow",
         "accounts that paid a token amount and liked within three minutes"),
    Cond("token_share", ">=", 0.6, "token_share", _TOKEN_SHARE),
    Cond("token_conversion_slow", ">=", 0.4, "token_conversion_slow",
         "share of the merchant's token payers who liked within three minutes of paying",
         gate=True),
    _FRESH_TOKEN,
)
_UNIFORM = (  # judged on the token pairs alone, so a busy shop's honest buyers do not dilute it
    _FEW_TOKEN_USERS,
    Cond("token_amount_top_share", ">=", 0.8, "token_amount_concentration",
         "share of the token payments on one amount"),
    _PROMPT_TOKEN,
    _CONVERTED,
    _FRESH_TOKEN,
)
_PROMPT = (  # campaigns that vary the token amount: nearly all pairs token, all prompt
    _FEW_TOKEN_USERS,
    Cond("token_share", ">=", 0.8, "token_share", _TOKEN_SHARE),
    _PROMPT_TOKEN,
    _CONVERTED,
    _FRESH_TOKEN,
)
_BURST = (  # a task's first workers: two token-paid likers within minutes, nothing else paid
    Cond("token_users_w", ">=", 2, "token_paid_likers_recent",
         "accounts that paid a token amount and liked within seconds, in the window"),
    Cond("token_share", ">=", 0.8, "token_share", _TOKEN_SHARE),
    _PROMPT_TOKEN,
    _CONVERTED,
    _FRESH_TOKEN,
)
_MECHANICAL = (
    Cond("pair_users", ">=", 10, "prompt_paid_likers",
         "accounts that liked within seconds of paying"),
    Cond("amount_top_share", ">=", 0.8, "amount_concentration",
         "share of those payments on one amount"),
    Cond("delay_cv", "<=", 0.3, "mechanical_delay",
         "coefficient of variation of pay->like delays"),
    Cond("delay_median", "<=", 30.0, "prompt_delay", "median seconds from payment to like"),
    _FRESH,
)

_LIKE_FIRST = (  # like, then pay the fee: most of the likes, most of the token payments
    Cond("rev_users_w", ">=", 3, "like_then_token_payers",
         "accounts that paid a token amount within two minutes after liking, in the window"),
    Cond("rev_share_w", ">=", 0.25, "like_then_token_share",
         "share of the likes in the window whose liker then paid a token amount", gate=True),
    Cond("rev_conversion", ">=", 0.5, "like_then_token_conversion",
         "share of the token payments in the window made just after the payer's like",
         gate=True),
)

_LIKE_FIRST_ANY = (  # the same with any amount: a coupon price, a real-looking one
    Cond("rev_any_users_w", ">=", 5, "like_then_payers",
         "accounts that paid within two minutes after liking, in the window"),
    Cond("rev_any_share_w", ">=", 0.5, "like_then_pay_share",
         "share of the likes in the window whose liker then paid", gate=True),
    Cond("rev_any_conversion", ">=", 0.7, "like_then_pay_conversion",
         "share of the payments in the window made just after the payer's like", gate=True),
)


class PaidLikes(Rule):
    """Token or mechanical pay->like pairs on a merchant."""

    name = "paid_likes"
    version = "1"
    view = "merchant"
    entity_type = "merchant"
    paths: ClassVar[tuple[tuple[Cond, ...], ...]] = (
        _TOKEN, _UNIFORM, _PROMPT, _BURST, _MECHANICAL, _LIKE_FIRST, _LIKE_FIRST_ANY)


_LIKE_SHARE = "share of the target's likes in the window from token-paid prompt likers"
#: on one target, the first two workers are a third of its likes or more:
#: two honest prompt token payers meet on a post only among many other likers
_BURST_TARGET = (
    *_BURST,
    Cond("token_like_share_w", ">=", 1 / 3, "token_paid_like_share", _LIKE_SHARE, gate=True),
)
#: a busy shop's honest token payers of the hours before (ten times the
#: traffic brings ten times as many) weigh down the merchant's conversion;
#: three workers making half of a target's likes, converting in the window
_RECENT_TARGET = (  # three is a gate: two are the two-account path's, on the long conversion
    Cond("token_users_w", ">=", 3, "token_paid_likers_recent",
         "accounts that paid a token amount and liked within seconds, in the window",
         gate=True),
    Cond("token_share", ">=", 0.8, "token_share", _TOKEN_SHARE),
    _PROMPT_TOKEN,
    Cond("token_conversion_w", ">=", 0.8, "token_conversion_recent",
         "share of the merchant's token payers of the window who liked within seconds",
         gate=True),
    Cond("token_like_share_w", ">=", 0.5, "token_paid_like_share", _LIKE_SHARE, gate=True),
    _FRESH_TOKEN,
)


class PaidTargetLikes(PaidLikes):
    """The same pattern concentrated on one target of the merchant.

    Examples
    --------
    >>> rule = PaidTargetLikes()
    >>> first_two = {"token_users": 2, "token_users_w": 2, "token_share": 1.0,
    ...              "token_delay_median": 15.0, "token_age": 1.0, "token_conversion": 1.0}
    >>> rule.score_one({**first_two, "token_like_share_w": 0.5}) >= 0.5
    True
    >>> rule.score_one({**first_two, "token_like_share_w": 0.1}) < 0.5  # a busy post's likers
    True

    Three such workers making half of the target's likes are judged by the
    conversion of the window's token payers: a busy shop's honest token
    buyers of the hours before, who paid without a like, hold the merchant's
    conversion down at ten times the traffic.

    >>> three = {**first_two, "token_users": 3, "token_users_w": 3, "token_conversion": 0.7,
    ...          "token_conversion_w": 1.0, "token_like_share_w": 1.0}
    >>> [r.code for r in rule.explain(three)][:2], rule.score_one(three) >= 0.5
    (['token_paid_likers_recent', 'token_share'], True)
    >>> rule.score_one({**three, "token_conversion_w": 0.5}) < 0.5  # a game shop's top-ups
    True
    """

    name = "paid_target_likes"
    entity_type = "target"
    paths = (_TOKEN, _UNIFORM, _PROMPT, _BURST_TARGET, _RECENT_TARGET, _MECHANICAL,
             _LIKE_FIRST, _LIKE_FIRST_ANY)
