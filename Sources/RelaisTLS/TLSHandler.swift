import COpenSSL
import NIOCore

/// Told to the handlers after this one when the handshake succeeded.
public struct TLSHandshakeCompleted: Sendable {
    /// `TLSv1.3`, `TLSv1.2`.
    public var protocolVersion: String
    public var cipher: String
    /// The server was authenticated by one of its TLSA records (DANE).
    public var authenticatedByDANE: Bool
}

/// TLS as a channel handler over OpenSSL memory BIOs: ciphertext from the
/// network goes into one BIO, OpenSSL's output is taken from the other and
/// written to the network; the handlers after it see plaintext. Writes made
/// before the handshake completes are held until it does. One SSL object,
/// owned here and freed in `deinit`.
public final class TLSHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    private enum State { case handshaking, active, closed }

    private let tlsContext: TLSContext
    private let ssl: OpaquePointer
    private let networkInput: OpaquePointer
    private let networkOutput: OpaquePointer
    private var state = State.handshaking
    private var heldWrites: [(ByteBuffer, EventLoopPromise<Void>?)] = []
    private var readBuffer = [UInt8](repeating: 0, count: 16 * 1024)

    /// `serverName` (clients): sent as SNI and, when the context verifies,
    /// checked against the certificate. With `dane`, the server is
    /// authenticated by its TLSA records instead, `serverName` being their
    /// base domain; verification is then on whatever the context says.
    public init(context: TLSContext, serverName: String? = nil, dane: DANEAuthentication? = nil) throws {
        guard let ssl = SSL_new(context.context) else { throw TLSError.fromQueue("cannot create a TLS session") }
        guard let input = BIO_new(BIO_s_mem()), let output = BIO_new(BIO_s_mem()) else {
            SSL_free(ssl)
            throw TLSError.fromQueue("cannot create TLS buffers")
        }
        SSL_set_bio(ssl, input, output)
        self.ssl = ssl
        self.networkInput = input
        self.networkOutput = output
        self.tlsContext = context
        if context.isServer {
            SSL_set_accept_state(ssl)
        } else {
            SSL_set_connect_state(ssl)
            if let dane, let serverName {
                try Self.authenticate(ssl, by: dane, baseDomain: serverName)
            } else if let serverName {
                let isAddress = serverName.contains(":") || serverName.allSatisfy { $0.isNumber || $0 == "." }
                if isAddress {
                    // No SNI for address literals (RFC 6066 3); check the IP SAN instead.
                    if context.verifiesPeer { X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), serverName) }
                } else {
                    _ = relais_ssl_set_host_name(ssl, serverName)
                    if context.verifiesPeer { SSL_set1_host(ssl, serverName) }
                }
            }
        }
    }

    deinit {
        SSL_free(ssl)
    }

    /// OpenSSL's DANE verification (RFC 7671, 7672): the base domain as SNI
    /// and first reference name, the next-hop domain as the second, no name
    /// checks for DANE-EE, and the peer verified against the records alone.
    private static func authenticate(_ ssl: OpaquePointer, by dane: DANEAuthentication, baseDomain: String) throws {
        guard SSL_dane_enable(ssl, baseDomain) > 0 else { throw TLSError.fromQueue("cannot enable DANE for \(baseDomain)") }
        _ = SSL_dane_set_flags(ssl, UInt(DANE_FLAG_NO_DANE_EE_NAMECHECKS))
        if dane.nextHopDomain.lowercased() != baseDomain.lowercased() {
            guard SSL_add1_host(ssl, dane.nextHopDomain) == 1 else {
                throw TLSError.fromQueue("cannot add the name \(dane.nextHopDomain)")
            }
        }
        var added = 0
        for record in dane.records where record.isUsableForSMTP {
            let result = record.data.withUnsafeBufferPointer {
                SSL_dane_tlsa_add(ssl, record.usage, record.selector, record.matchingType, $0.baseAddress, $0.count)
            }
            if result > 0 { added += 1 }
        }
        ERR_clear_error()
        guard added > 0 else { throw TLSError("no usable TLSA record for \(baseDomain)") }
        SSL_set_verify(ssl, SSL_VERIFY_PEER, nil)
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        if !tlsContext.isServer && context.channel.isActive { drive(context) }
    }

    public func channelActive(context: ChannelHandlerContext) {
        if !tlsContext.isServer { drive(context) }
        context.fireChannelActive()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard state != .closed else { return }
        let bytes = unwrapInboundIn(data)
        let written = bytes.withUnsafeReadableBytes { BIO_write(networkInput, $0.baseAddress, Int32($0.count)) }
        guard written == bytes.readableBytes else { return fail(context, TLSError("cannot buffer TLS input")) }
        drive(context)
    }

    public func channelInactive(context: ChannelHandlerContext) {
        state = .closed
        let held = heldWrites
        heldWrites = []
        for (_, promise) in held { promise?.fail(ChannelError.ioOnClosedChannel) }
        context.fireChannelInactive()
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let bytes = unwrapOutboundIn(data)
        switch state {
        case .handshaking: heldWrites.append((bytes, promise))
        case .active: encrypt(bytes, promise: promise, context: context)
        case .closed: promise?.fail(ChannelError.ioOnClosedChannel)
        }
    }

    public func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if state == .active {
            _ = SSL_shutdown(ssl)
            sendOutput(context, promise: nil)
            context.flush()
        }
        state = .closed
        context.close(mode: mode, promise: promise)
    }

    // MARK: - Driving OpenSSL

    private func drive(_ context: ChannelHandlerContext) {
        if state == .handshaking {
            let result = SSL_do_handshake(ssl)
            sendOutput(context, promise: nil)
            if result == 1 {
                state = .active
                context.flush()
                let cipher = SSL_get_current_cipher(ssl).map { String(cString: SSL_CIPHER_get_name($0)) } ?? "unknown"
                context.fireUserInboundEventTriggered(TLSHandshakeCompleted(
                    protocolVersion: String(cString: SSL_get_version(ssl)), cipher: cipher,
                    authenticatedByDANE: SSL_get0_dane_authority(ssl, nil, nil) >= 0))
                let held = heldWrites
                heldWrites = []
                for (bytes, promise) in held { encrypt(bytes, promise: promise, context: context) }
                context.flush()
            } else {
                let error = SSL_get_error(ssl, result)
                context.flush()
                guard error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE else {
                    return fail(context, handshakeError())
                }
                return
            }
        }
        readPlaintext(context)
    }

    private func readPlaintext(_ context: ChannelHandlerContext) {
        var received = false
        while state == .active {
            let count = readBuffer.withUnsafeMutableBytes { SSL_read(ssl, $0.baseAddress, Int32($0.count)) }
            if count > 0 {
                received = true
                context.fireChannelRead(wrapInboundOut(ByteBuffer(bytes: readBuffer[0..<Int(count)])))
                continue
            }
            let error = SSL_get_error(ssl, count)
            if error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE { break }
            if error == SSL_ERROR_ZERO_RETURN {
                sendOutput(context, promise: nil)
                context.flush()
                context.close(promise: nil)
                break
            }
            return fail(context, TLSError.fromQueue("TLS read failed"))
        }
        sendOutput(context, promise: nil)
        if received { context.fireChannelReadComplete() }
    }

    private func encrypt(_ bytes: ByteBuffer, promise: EventLoopPromise<Void>?, context: ChannelHandlerContext) {
        var remaining = bytes
        while remaining.readableBytes > 0 {
            let written = remaining.withUnsafeReadableBytes { SSL_write(ssl, $0.baseAddress, Int32($0.count)) }
            guard written > 0 else {
                promise?.fail(TLSError.fromQueue("TLS write failed"))
                return
            }
            remaining.moveReaderIndex(forwardBy: Int(written))
        }
        sendOutput(context, promise: promise)
    }

    /// Moves what OpenSSL produced to the network.
    private func sendOutput(_ context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) {
        let pending = relais_bio_pending(networkOutput)
        guard pending > 0 else {
            if let promise { context.write(wrapOutboundOut(ByteBuffer()), promise: promise) }
            return
        }
        var buffer = context.channel.allocator.buffer(capacity: pending)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: pending) { raw in
            Int(max(0, BIO_read(networkOutput, raw.baseAddress, Int32(pending))))
        }
        context.write(wrapOutboundOut(buffer), promise: promise)
    }

    private func handshakeError() -> TLSError {
        let verify = SSL_get_verify_result(ssl)
        if verify != X509_V_OK {
            ERR_clear_error()
            return TLSError("certificate verification failed: \(String(cString: X509_verify_cert_error_string(verify)))")
        }
        return TLSError.fromQueue("TLS handshake failed")
    }

    private func fail(_ context: ChannelHandlerContext, _ error: TLSError) {
        guard state != .closed else { return }
        state = .closed
        ERR_clear_error()
        context.fireErrorCaught(error)
        context.close(promise: nil)
    }
}
