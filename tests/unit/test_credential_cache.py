"""The in-process cache of recently verified credentials."""

from verify.domain.accounts import CredentialCache, Principal

P = Principal("AC" + "1" * 32, "SK" + "2" * 32)


def test_a_cached_credential_is_found_until_its_ttl():
    """An entry answers for `ttl` seconds and not after."""
    cache = CredentialCache(ttl=5)
    cache.put("SK1", "secret", P, now=100.0)
    assert cache.get("SK1", "secret", now=104.9) == P
    assert cache.get("SK1", "secret", now=105.0) is None


def test_another_secret_for_the_same_sid_misses():
    """The whole credential is the key: a wrong secret never rides on a right one."""
    cache = CredentialCache()
    cache.put("SK1", "secret", P, now=0.0)
    assert cache.get("SK1", "other", now=1.0) is None


def test_the_cache_stays_bounded():
    """Past its size the cache starts over instead of growing."""
    cache = CredentialCache(size=2)
    for i in range(3):
        cache.put(f"SK{i}", "s", P, now=0.0)
    assert cache.get("SK2", "s", now=1.0) == P
    assert cache.get("SK0", "s", now=1.0) is None
