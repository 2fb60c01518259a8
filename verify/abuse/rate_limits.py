"""Tenant-defined send limits: Twilio's RateLimits and their Buckets, per service."""

from __future__ import annotations

import re

from sqlalchemy import select

from verify.abuse.registry import Registry
from verify.domain import sids
from verify.domain.ratelimits import MAX_INTERVAL
from verify.errors import (
    BucketExists,
    InvalidParameter,
    InvalidUniqueName,
    MaxBuckets,
    MaxRateLimits,
    NotFound,
    RateLimitExists,
)
from verify.models.abuse import (
    RateLimit,
    RateLimitBucket,
)

RATE_LIMIT = "RK"
BUCKET = "BL"
MAX_RATE_LIMITS = 20
MAX_BUCKETS = 5
UNIQUE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class RateLimits(Registry):
    """Twilio's Programmable Rate Limits (``/v2/Services/{sid}/RateLimits`` and ``/Buckets``)."""

    def create(
        self, account_sid: str, service_sid: str, unique_name: str, description: str | None
    ) -> RateLimit:
        if not UNIQUE_NAME.match(unique_name):
            raise InvalidUniqueName(
                "UniqueName may only contain letters, digits, '-', '_' and '.' (at most 64)"
            )
        with self._changing():
            self._service(account_sid, service_sid)
            existing = list(
                self._session.scalars(select(RateLimit).where(RateLimit.service_sid == service_sid))
            )
            if any(r.unique_name == unique_name for r in existing):
                raise RateLimitExists(f"A rate limit named {unique_name} already exists")
            if len(existing) >= MAX_RATE_LIMITS:
                raise MaxRateLimits(f"A service has at most {MAX_RATE_LIMITS} rate limits")
            now = self._clock.now()
            limit = RateLimit(
                sid=sids.new_sid(RATE_LIMIT),
                account_sid=account_sid,
                service_sid=service_sid,
                unique_name=unique_name,
                description=description,
                date_created=now,
                date_updated=now,
            )
            self._session.add(limit)
        return limit

    def get(self, account_sid: str, service_sid: str, sid: str) -> RateLimit:
        with self._session.begin():
            return self._get(account_sid, service_sid, sid)

    def update(
        self, account_sid: str, service_sid: str, sid: str, description: str | None
    ) -> RateLimit:
        with self._session.begin():
            limit = self._get(account_sid, service_sid, sid)
            if description is not None:
                limit.description = description
            limit.date_updated = self._clock.now()
        return limit

    def delete(self, account_sid: str, service_sid: str, sid: str) -> None:
        with self._changing():
            self._session.delete(self._get(account_sid, service_sid, sid))

    def page(self, account_sid: str, service_sid: str, offset: int, limit: int) -> list[RateLimit]:
        with self._session.begin():
            self._service(account_sid, service_sid)
            query = select(RateLimit).where(RateLimit.service_sid == service_sid)
            return self._page(query.order_by(RateLimit.date_created, RateLimit.sid), offset, limit)

    # -- buckets ------------------------------------------------------------------------------------

    def create_bucket(
        self, account_sid: str, service_sid: str, rate_limit_sid: str, max_: int, interval: int
    ) -> RateLimitBucket:
        _check_bucket(max_, interval)
        with self._changing():
            limit = self._get(account_sid, service_sid, rate_limit_sid)
            buckets = self._buckets(limit.sid)
            if any(b.interval == interval for b in buckets):
                raise BucketExists(f"This rate limit already has a bucket of {interval}s")
            if len(buckets) >= MAX_BUCKETS:
                raise MaxBuckets(f"A rate limit has at most {MAX_BUCKETS} buckets")
            now = self._clock.now()
            bucket = RateLimitBucket(
                sid=sids.new_sid(BUCKET),
                rate_limit_sid=limit.sid,
                account_sid=account_sid,
                service_sid=service_sid,
                max=max_,
                interval=interval,
                date_created=now,
                date_updated=now,
            )
            self._session.add(bucket)
        return bucket

    def get_bucket(
        self, account_sid: str, service_sid: str, rate_limit_sid: str, sid: str
    ) -> RateLimitBucket:
        with self._session.begin():
            return self._bucket(account_sid, service_sid, rate_limit_sid, sid)

    def update_bucket(
        self,
        account_sid: str,
        service_sid: str,
        rate_limit_sid: str,
        sid: str,
        max_: int | None,
        interval: int | None,
    ) -> RateLimitBucket:
        with self._changing():
            bucket = self._bucket(account_sid, service_sid, rate_limit_sid, sid)
            new_max = bucket.max if max_ is None else max_
            new_interval = bucket.interval if interval is None else interval
            _check_bucket(new_max, new_interval)
            if new_interval != bucket.interval and any(
                b.interval == new_interval for b in self._buckets(rate_limit_sid)
            ):
                raise BucketExists(f"This rate limit already has a bucket of {new_interval}s")
            bucket.max, bucket.interval = new_max, new_interval
            bucket.date_updated = self._clock.now()
        return bucket

    def delete_bucket(
        self, account_sid: str, service_sid: str, rate_limit_sid: str, sid: str
    ) -> None:
        with self._changing():
            self._session.delete(self._bucket(account_sid, service_sid, rate_limit_sid, sid))

    def buckets(
        self, account_sid: str, service_sid: str, rate_limit_sid: str
    ) -> list[RateLimitBucket]:
        with self._session.begin():
            self._get(account_sid, service_sid, rate_limit_sid)
            return self._buckets(rate_limit_sid)

    def _buckets(self, rate_limit_sid: str) -> list[RateLimitBucket]:
        return list(
            self._session.scalars(
                select(RateLimitBucket)
                .where(RateLimitBucket.rate_limit_sid == rate_limit_sid)
                .order_by(RateLimitBucket.interval)
            )
        )

    def _bucket(
        self, account_sid: str, service_sid: str, rate_limit_sid: str, sid: str
    ) -> RateLimitBucket:
        self._get(account_sid, service_sid, rate_limit_sid)
        bucket = self._session.get(RateLimitBucket, sid)
        if bucket is None or bucket.rate_limit_sid != rate_limit_sid:
            raise NotFound(f"The requested resource /Buckets/{sid} was not found")
        return bucket

    def _get(self, account_sid: str, service_sid: str, sid: str) -> RateLimit:
        limit = self._session.get(RateLimit, sid)
        if limit is None or limit.account_sid != account_sid or limit.service_sid != service_sid:
            raise NotFound(f"The requested resource /RateLimits/{sid} was not found")
        return limit


def _check_bucket(max_: int, interval: int) -> None:
    if not 1 <= max_ <= 10_000_000:
        raise InvalidParameter("Max", "must be between 1 and 10000000")
    if not 1 <= interval <= MAX_INTERVAL:
        raise InvalidParameter("Interval", f"must be between 1 and {MAX_INTERVAL} seconds")
