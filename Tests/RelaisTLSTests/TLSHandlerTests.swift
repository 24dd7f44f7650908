import Foundation
import NIOCore
import NIOEmbedded
import RelaisTLS
import Testing

/// The TLS handler on both ends of an in-memory connection: two embedded
/// channels whose ciphertext is carried across by hand, so handshakes,
/// held writes, verification failures and close_notify are tested without
/// sockets.
struct TLSHandlerTests {
    /// A self-signed certificate for `localhost`, made with the openssl tool.
    final class Certificate {
        let folder: String
        var certificate: String { folder + "/cert.pem" }
        var key: String { folder + "/key.pem" }

        init(name: String = "localhost", days: Int = 2) throws {
            folder = NSTemporaryDirectory() + "relais-tls-" + UUID().uuidString
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
            process.arguments = ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                                 "-keyout", folder + "/key.pem", "-out", folder + "/cert.pem", "-days", "\(days)",
                                 "-subj", "/CN=\(name)", "-addext", "subjectAltName=DNS:\(name)"]
            process.standardError = FileHandle.nullDevice
            try process.run()
            process.waitUntilExit()
            guard process.terminationStatus == 0 else { throw CocoaError(.fileWriteUnknown) }
        }

        /// The certificate's DER bytes (what a `3 0 0` TLSA record holds).
        func der() throws -> [UInt8] {
            let pem = try String(contentsOfFile: certificate, encoding: .utf8)
            let body = pem.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
            return [UInt8](try #require(Data(base64Encoded: body)))
        }

        deinit { try? FileManager.default.removeItem(atPath: folder) }
    }

    /// Collects what reaches the application above a TLS handler.
    final class Application: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        var received = ""
        var handshake: TLSHandshakeCompleted?
        var errors: [any Error] = []
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            received += String(buffer: unwrapInboundIn(data))
        }
        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if let event = event as? TLSHandshakeCompleted { handshake = event }
        }
        func errorCaught(context: ChannelHandlerContext, error: any Error) { errors.append(error) }
    }

    struct Pair {
        let client = EmbeddedChannel()
        let server = EmbeddedChannel()
        let clientApp = Application()
        let serverApp = Application()

        init(server serverContext: TLSContext, client clientContext: TLSContext, serverName: String = "localhost",
             dane: DANEAuthentication? = nil) throws {
            try server.pipeline.syncOperations.addHandlers([try TLSHandler(context: serverContext), serverApp])
            try client.pipeline.syncOperations.addHandlers([
                try TLSHandler(context: clientContext, serverName: serverName, dane: dane), clientApp])
            let address = try SocketAddress(ipAddress: "127.0.0.1", port: 25)
            try server.connect(to: address).wait()
            try client.connect(to: address).wait()
        }

        /// Carries ciphertext both ways until neither side has more to say.
        func pump() throws {
            var moved = true
            while moved {
                moved = false
                while let bytes = try client.readOutbound(as: ByteBuffer.self) {
                    moved = true
                    _ = try? server.writeInbound(bytes)
                }
                while let bytes = try server.readOutbound(as: ByteBuffer.self) {
                    moved = true
                    _ = try? client.writeInbound(bytes)
                }
            }
        }
    }

    @Test func handshakeAndDataBothWays() throws {
        let certificate = try Certificate()
        let pair = try Pair(server: try TLSContext.server(certificateChain: certificate.certificate, privateKey: certificate.key),
                            client: try TLSContext.client(verify: true, caFile: certificate.certificate))
        // Written before the handshake: held, then sent encrypted.
        pair.client.writeAndFlush(ByteBuffer(string: "EHLO client.example\r\n"), promise: nil)
        try pair.pump()
        #expect(pair.clientApp.handshake != nil)
        #expect(pair.serverApp.handshake?.protocolVersion == "TLSv1.3")
        #expect(pair.serverApp.received == "EHLO client.example\r\n")
        try pair.server.writeAndFlush(ByteBuffer(string: "250 relay.test\r\n")).wait()
        try pair.pump()
        #expect(pair.clientApp.received == "250 relay.test\r\n")
    }

    @Test func ciphertextNeverCarriesThePlaintext() throws {
        let certificate = try Certificate()
        let pair = try Pair(server: try TLSContext.server(certificateChain: certificate.certificate, privateKey: certificate.key),
                            client: try TLSContext.client(verify: true, caFile: certificate.certificate))
        try pair.pump()
        pair.client.writeAndFlush(ByteBuffer(string: "AUTH PLAIN c2VjcmV0\r\n"), promise: nil)
        var wire = ""
        while let bytes = try pair.client.readOutbound(as: ByteBuffer.self) {
            wire += String(decoding: bytes.readableBytesView, as: UTF8.self)
            try pair.server.writeInbound(bytes)
        }
        #expect(!wire.isEmpty && !wire.contains("c2VjcmV0"))
        #expect(pair.serverApp.received == "AUTH PLAIN c2VjcmV0\r\n")
    }

    @Test func wrongNameFailsVerification() throws {
        let certificate = try Certificate(name: "mx.example")
        let pair = try Pair(server: try TLSContext.server(certificateChain: certificate.certificate, privateKey: certificate.key),
                            client: try TLSContext.client(verify: true, caFile: certificate.certificate), serverName: "other.example")
        try pair.pump()
        #expect(pair.clientApp.handshake == nil)
        #expect(pair.clientApp.errors.contains { "\($0)".contains("certificate verification failed") })
        #expect(pair.serverApp.received.isEmpty)
    }

    @Test func untrustedCertificateFailsUnlessVerificationIsOff() throws {
        let certificate = try Certificate()
        let server = try TLSContext.server(certificateChain: certificate.certificate, privateKey: certificate.key)
        let verified = try Pair(server: server, client: try TLSContext.client(verify: true, caFile: nil))
        try verified.pump()
        #expect(verified.clientApp.handshake == nil)
        let opportunistic = try Pair(server: server, client: try TLSContext.client(verify: false, caFile: nil))
        try opportunistic.pump()
        #expect(opportunistic.clientApp.handshake != nil)
    }

    @Test func garbageIsAnError() throws {
        let certificate = try Certificate()
        let server = EmbeddedChannel()
        let application = Application()
        try server.pipeline.syncOperations.addHandlers([
            try TLSHandler(context: try TLSContext.server(certificateChain: certificate.certificate, privateKey: certificate.key)),
            application,
        ])
        try server.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 25)).wait()
        _ = try? server.writeInbound(ByteBuffer(string: "EHLO plaintext.example\r\n"))
        #expect(application.received.isEmpty)
        #expect(application.handshake == nil)
        #expect(application.errors.contains { $0 is TLSError })
        #expect(!server.isActive)
    }

    @Test func daneEEAuthenticatesWithoutACertificateAuthorityOrNameCheck() throws {
        let certificate = try Certificate(name: "mx.example")
        let server = try TLSContext.server(certificateChain: certificate.certificate, privateKey: certificate.key)
        let record = TLSARecord(usage: 3, selector: 0, matchingType: 0, data: try certificate.der())
        // No CA trusts it and the name differs: only the TLSA record vouches for it.
        let pair = try Pair(server: server, client: try TLSContext.client(verify: true, caFile: nil), serverName: "other.example",
                            dane: DANEAuthentication(records: [record], nextHopDomain: "example.org"))
        try pair.pump()
        #expect(pair.clientApp.handshake?.authenticatedByDANE == true)
    }

    @Test func daneRecordsThatMatchNothingFailVerification() throws {
        let certificate = try Certificate(name: "mx.example")
        let server = try TLSContext.server(certificateChain: certificate.certificate, privateKey: certificate.key)
        // The right certificate in a trusted CA file does not help: the TLSA records decide.
        let wrong = TLSARecord(usage: 3, selector: 1, matchingType: 1, data: [UInt8](repeating: 7, count: 32))
        let pair = try Pair(server: server, client: try TLSContext.client(verify: true, caFile: certificate.certificate),
                            serverName: "mx.example", dane: DANEAuthentication(records: [wrong], nextHopDomain: "example.org"))
        try pair.pump()
        #expect(pair.clientApp.handshake == nil)
        #expect(pair.clientApp.errors.contains { "\($0)".contains("certificate verification failed") })
    }

    @Test func onlyUnusableRecordsAreRefused() throws {
        let pkix = TLSARecord(usage: 1, selector: 1, matchingType: 1, data: [UInt8](repeating: 7, count: 32))
        #expect(throws: TLSError.self) {
            try TLSHandler(context: try TLSContext.client(verify: true, caFile: nil), serverName: "mx.example",
                           dane: DANEAuthentication(records: [pkix], nextHopDomain: "example.org"))
        }
    }
}
