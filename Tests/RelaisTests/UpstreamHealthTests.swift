@testable import Relais
import SMTPCore
import Testing

/// The circuit breaker, throttling and quota windows on made-up times.
struct UpstreamHealthTests {
    private let settings: UpstreamHealthSettings = {
        var settings = UpstreamHealthSettings()
        settings.failures = 3
        settings.downMin = 10
        settings.downMax = 35
        return settings
    }()

    @Test func consecutiveFailuresOpenTheBreakerOnce() {
        var health = UpstreamHealth()
        #expect(health.failed("refused", at: 100, settings) == nil)
        #expect(health.failed("refused", at: 101, settings) == nil)
        #expect(health.failed("refused", at: 102, settings) == .down(until: 112, reason: "refused"))
        #expect(health.failed("refused", at: 103, settings) == nil)
        #expect(health.admit(at: 111, settings).0 == .skip(reason: "down until 00:01:52Z (refused)", retryAt: 112))
    }

    @Test func aSuccessInBetweenStartsTheCountAgain() {
        var health = UpstreamHealth()
        _ = health.failed("x", at: 0, settings)
        _ = health.failed("x", at: 0, settings)
        #expect(health.succeeded(delivered: false, maxConnections: 10) == nil)
        #expect(health.failed("x", at: 0, settings) == nil)
        #expect(health.state == .up)
    }

    @Test func oneProbeAtATimeAndBackoffToDownMax() {
        var health = UpstreamHealth()
        for _ in 0..<3 { _ = health.failed("x", at: 0, settings) }
        #expect(health.admit(at: 10, settings) == (.probe, .probing))
        if case .skip = health.admit(at: 10, settings).0 {} else { Issue.record("a second probe was let through") }
        #expect(health.failed("x", at: 11, settings) == .down(until: 31, reason: "x"))
        #expect(health.admit(at: 31, settings).0 == .probe)
        #expect(health.failed("x", at: 31, settings) == .down(until: 66, reason: "x"))
        #expect(health.admit(at: 66, settings).0 == .probe)
        #expect(health.succeeded(delivered: false, maxConnections: 10) == .up)
        #expect(health.admit(at: 66, settings).0 == .connect)
    }

    @Test func throttlingPausesHalvesAndRecovers() {
        var health = UpstreamHealth()
        #expect(health.throttled("421", at: 0, settings, maxConnections: 10) == .paused(until: 10, reason: "421"))
        #expect(health.connectionCap == 5)
        #expect(health.throttled("421", at: 2, settings, maxConnections: 10) == nil, "a late reply from before the pause")
        #expect(health.connectionCap == 5)
        #expect(health.admit(at: 5, settings).0 == .skip(reason: "paused after a throttling reply until 00:00:10Z", retryAt: 10))
        #expect(health.admit(at: 10, settings).0 == .connect)
        #expect(health.throttled("421", at: 10, settings, maxConnections: 10) == .paused(until: 30, reason: "421"))
        #expect(health.connectionCap == 2)
        _ = health.succeeded(delivered: false, maxConnections: 10)
        #expect(health.throttled("421", at: 30, settings, maxConnections: 10) == .paused(until: 65, reason: "421"))
        #expect(health.connectionCap == 1)
        _ = health.succeeded(delivered: true, maxConnections: 3)
        _ = health.succeeded(delivered: true, maxConnections: 3)
        #expect(health.connectionCap == nil)
        #expect(health.throttled("421", at: 100, settings, maxConnections: 3) == .paused(until: 110, reason: "421"))
    }

    @Test(arguments: [
        (SMTPReply(421, EnhancedStatusCode(4, 7, 0), "Too many messages"), true),
        (SMTPReply(421, nil, "Service not available"), true),
        (SMTPReply(451, EnhancedStatusCode(4, 7, 1), "Try later"), true),
        (SMTPReply(450, nil, "4.7.1 rate limited"), true),
        (SMTPReply(452, nil, "Too many recipients"), true),
        (SMTPReply(451, EnhancedStatusCode(4, 3, 0), "Local error"), false),
        (SMTPReply(550, EnhancedStatusCode(5, 7, 1), "rate limit"), false),
        (SMTPReply(250, nil, "OK"), false),
    ])
    func throttlingReplies(_ reply: SMTPReply, _ throttles: Bool) {
        #expect(UpstreamFailure.isThrottle(reply) == throttles)
    }

    @Test func failuresAreClassified() {
        #expect(UpstreamFailure.classify(SMTPClientError.timeout(stage: "greeting")) == .connectivity("timeout waiting for the reply to greeting"))
        #expect(UpstreamFailure.classify(SMTPClientError.unexpected(SMTPReply(421, nil, "busy"), stage: "greeting"))
                == .throttle("greeting answered 421 busy"))
        #expect(UpstreamFailure.classify(SMTPClientError.unexpected(SMTPReply(535, nil, "no"), stage: "AUTH PLAIN as u"))
                == .other("AUTH PLAIN as u answered 535 no"))
    }

    @Test func quotaWindowsFillAndReopen() {
        let quota = UpstreamQuota(perMinute: 2, perDay: 3)
        var usage = QuotaUsage()
        #expect(usage.refusal(at: 60, quota) == nil)
        usage.reserve(at: 60, quota)
        usage.reserve(at: 61, quota)
        #expect(usage.refusal(at: 62, quota)?.opensAt == 120)
        #expect(usage.refusal(at: 120, quota) == nil)
        usage.reserve(at: 120, quota)
        #expect(usage.refusal(at: 121, quota)?.reason == "quota per_day = 3 used up")
        #expect(usage.refusal(at: 121, quota)?.opensAt == 86400)
        usage.release(reservedAt: 120, quota)
        #expect(usage.refusal(at: 121, quota) == nil)
        #expect(usage.summary(at: 121, quota) == "per_minute 0/2, per_day 2/3")
    }
}
