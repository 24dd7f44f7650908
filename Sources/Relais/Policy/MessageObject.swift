import NIOCore
import RelaisLua
import SMTPCore

/// The message as the `data` and `route` hooks see it: envelope, headers
/// to read and (in `data`) edit, the body, and `notes`.
final class MessageDraft {
    let id: String
    var sender: ReversePath
    var recipients: [MailboxAddress]
    private var parsedHeaders: MessageHeaders?
    /// Parsed on first use: a policy without data or route hooks never pays for it.
    var headers: MessageHeaders {
        get {
            if let parsedHeaders { return parsedHeaders }
            let parsed = MessageHeaders(parsing: content)
            parsedHeaders = parsed
            return parsed
        }
        set { parsedHeaders = newValue }
    }
    let size: Int
    let smtpUTF8: Bool
    private let content: ByteBuffer

    init(id: String, sender: ReversePath, recipients: [MailboxAddress], content: ByteBuffer, smtpUTF8: Bool) {
        self.id = id
        self.sender = sender
        self.recipients = recipients
        self.content = content
        self.size = content.readableBytes
        self.smtpUTF8 = smtpUTF8
    }

    /// True once a hook changed the header section.
    var headersChanged: Bool { parsedHeaders?.changed ?? false }
    /// Signers `msg:dkim_sign` asked for: their signature goes to every target.
    var dkimSigners: [DKIMSigner] = []
}

/// `msg` in Lua.
final class MessageObject: LuaObject {
    let draft: MessageDraft
    /// `msg.notes`, made when a hook first reads it: most messages'
    /// hooks never do, and a table per message is work for the collector.
    private var notes: LuaReference?
    /// Headers and recipients can change in `data`; `route` only reads.
    var editable: Bool
    /// A report Relais made (bounce, delay or success notice): `msg.is_bounce`.
    let isReport: Bool

    init(draft: MessageDraft, editable: Bool, isReport: Bool = false) {
        self.draft = draft
        self.editable = editable
        self.isReport = isReport
    }

    /// Releases `msg.notes`, if a hook made it, once the message's hooks are done.
    func releaseNotes(in state: LuaState) {
        if let notes { state.release(notes) }
    }

    var luaTypeName: String { "message \(draft.id)" }

    var luaMethodNames: Set<String> {
        ["header", "headers", "add_header", "append_header", "set_header", "remove_header", "body",
         "add_recipient", "remove_recipient", "dkim_sign"]
    }

    func luaField(_ name: String, state: LuaState) throws -> LuaValue {
        switch name {
        case "id": return .text(draft.id)
        case "sender": return .text(draft.sender.description)
        case "recipients": return .table(.array(draft.recipients.map { .text($0.description) }))
        case "size": return .integer(Int64(draft.size))
        case "notes":
            if let notes { return .reference(notes) }
            let made = state.makeTableReference()
            notes = made
            return .reference(made)
        case "is_bounce": return .boolean(isReport)
        default: return .nil
        }
    }

    func luaCall(_ method: String, _ arguments: [LuaValue], state: LuaState) throws -> [LuaValue] {
        func text(_ index: Int, _ what: String) throws -> String {
            guard index < arguments.count, let value = arguments[index].stringValue else {
                throw LuaError("msg:\(method): \(what) must be a string")
            }
            return value
        }
        func bytes(_ index: Int) throws -> [UInt8] {
            guard index < arguments.count else { throw LuaError("msg:\(method): value must be a string") }
            switch arguments[index] {
            case .string(let string): return string.bytes
            case .integer, .number: return Array("\(arguments[index].numberValue ?? 0)".utf8)
            default: throw LuaError("msg:\(method): value must be a string")
            }
        }
        func mustEdit() throws {
            guard editable else { throw LuaError("msg:\(method): the message can be changed in the data hook only") }
        }
        do {
            switch method {
            case "header":
                return [draft.headers.values(named: try text(0, "name")).first.map { .string(LuaString(bytes: $0)) } ?? .nil]
            case "headers":
                if arguments.isEmpty || arguments[0].isNil {
                    return [.table(.array(draft.headers.fields.filter { !$0.name.isEmpty }.map {
                        .table(.record([("name", .text($0.name)), ("value", .string(LuaString(bytes: $0.value)))]))
                    }))]
                }
                return [.table(.array(draft.headers.values(named: try text(0, "name")).map { .string(LuaString(bytes: $0)) }))]
            case "add_header":
                try mustEdit()
                try draft.headers.add(try text(0, "name"), try bytes(1))
                return []
            case "append_header":
                try mustEdit()
                try draft.headers.append(try text(0, "name"), try bytes(1))
                return []
            case "set_header":
                try mustEdit()
                try draft.headers.set(try text(0, "name"), try bytes(1))
                return []
            case "remove_header":
                try mustEdit()
                return [.integer(Int64(draft.headers.remove(try text(0, "name"))))]
            case "body":
                return [.string(LuaString(bytes: Array(draft.headers.body.readableBytesView)))]
            case "add_recipient":
                try mustEdit()
                let address = try mailbox(try text(0, "address"))
                if !draft.recipients.contains(address) { draft.recipients.append(address) }
                return []
            case "dkim_sign":
                try mustEdit()
                guard case .object(let id)? = arguments.first, let signer = (state.object(id) as? DKIMSignerObject)?.signer else {
                    throw LuaError("msg:dkim_sign expects a signer made by relais.dkim{...}")
                }
                if !draft.dkimSigners.contains(where: { $0.label == signer.label }) { draft.dkimSigners.append(signer) }
                return []
            case "remove_recipient":
                try mustEdit()
                let address = try mailbox(try text(0, "address"))
                let before = draft.recipients.count
                draft.recipients.removeAll { $0.description.lowercased() == address.description.lowercased() }
                return [.boolean(draft.recipients.count != before)]
            default:
                return []
            }
        } catch let error as HeaderError {
            throw LuaError("msg:\(method): \(error)")
        }
    }

    private func mailbox(_ text: String) throws -> MailboxAddress {
        do {
            let address = try PathParser().mailbox(Substring(text))
            if address.needsSMTPUTF8 && !draft.smtpUTF8 {
                throw LuaError("non-ASCII address \(text.debugDescription) needs a message sent with SMTPUTF8")
            }
            return address
        } catch let error as SMTPSyntaxError {
            throw LuaError("invalid address \(text.debugDescription): \(error.reason)")
        }
    }
}
