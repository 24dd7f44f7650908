import CLua
import CLuaBridge

/// A Swift object that Lua scripts use like a table: `obj.field`,
/// `obj.field = value` and `obj:method(...)` all call back into Swift.
/// The state keeps the object alive while Lua holds it; one registered for
/// a call (`register`) only until its `release`.
public protocol LuaObject: AnyObject {
    /// Shown by `tostring(obj)`.
    var luaTypeName: String { get }
    /// Names callable as `obj:name(...)`.
    var luaMethodNames: Set<String> { get }
    /// `obj.name`; return `.nil` for unknown fields.
    func luaField(_ name: String, state: LuaState) throws -> LuaValue
    /// `obj.name = value`; throw to refuse (the script gets a Lua error).
    func luaSetField(_ name: String, _ value: LuaValue, state: LuaState) throws
    /// `obj:name(arguments...)`; returns the results.
    func luaCall(_ method: String, _ arguments: [LuaValue], state: LuaState) throws -> [LuaValue]
    /// `obj:name(arguments...)` for a method that may wait: pushes the
    /// results and returns their count, or returns what `LuaState.suspend`
    /// returned. By default, `luaCall`'s results.
    func luaCallPushing(_ method: String, _ arguments: [LuaValue], state: LuaState) throws -> Int
}

extension LuaObject {
    public func luaCallPushing(_ method: String, _ arguments: [LuaValue], state: LuaState) throws -> Int {
        let results = try luaCall(method, arguments, state: state)
        for result in results { state.push(result) }
        return results.count
    }

    public func luaSetField(_ name: String, _ value: LuaValue, state: LuaState) throws {
        throw LuaError("\(luaTypeName).\(name) cannot be assigned")
    }
}

/// The ids of the Swift functions behind the shared object metatable.
struct ObjectFunctionIDs {
    var metatableReference: Int32
    var methodCaller: Int32
}

extension LuaState {
    /// Pushes `object` as a userdata; returns its id (valid while Lua holds it).
    @discardableResult
    public func push(object: any LuaObject) -> Int {
        let id = nextObjectID
        nextObjectID += 1
        objects[id] = object
        pushObject(id: id)
        return id
    }

    public func object(_ id: Int) -> (any LuaObject)? { objects[id] }

    /// Makes one userdata for `object` and keeps it alive until `release`;
    /// pass the result to Lua as `.reference(...)`.
    public func register(_ object: any LuaObject) -> LuaReference {
        push(object: object)
        defer { pop() }
        return reference(at: -1)
    }

    /// Lets Lua collect a registered value. A registered object is
    /// forgotten at once, not when the collector reaches its userdata: the
    /// userdata weighs a few bytes in Lua's accounting, so the collector
    /// would let thousands of messages (each holding its content) pile up
    /// first. A script that kept the userdata gets an error when it uses it.
    public func release(_ reference: LuaReference) {
        guard reference.stateID == ObjectIdentifier(self) else { return }
        lua_rawgeti(L, relais_lua_registryindex(), lua_Integer(reference.reference))
        if let id = objectID(at: -1) { objects[id] = nil }
        pop()
        luaL_unref(L, relais_lua_registryindex(), reference.reference)
    }

    func pushObject(id: Int) {
        guard objects[id] != nil else { return lua_pushnil(L) }
        let block = lua_newuserdatauv(L, MemoryLayout<Int>.size, 0)
        block?.storeBytes(of: id, as: Int.self)
        lua_rawgeti(L, relais_lua_registryindex(), lua_Integer(objectMetatable().metatableReference))
        lua_setmetatable(L, -2)
    }

    func objectID(at index: Int32) -> Int? {
        guard lua_getmetatable(L, index) != 0 else { return nil }
        lua_rawgeti(L, relais_lua_registryindex(), lua_Integer(objectMetatable().metatableReference))
        let isOurs = lua_rawequal(L, -1, -2) != 0
        pop(2)
        guard isOurs, let block = lua_touserdata(L, index) else { return nil }
        return block.load(as: Int.self)
    }

    private func objectArgument(_ index: Int32) throws -> any LuaObject {
        guard let id = objectID(at: index) else { throw LuaError("expected a relais object (use ':' to call methods)") }
        guard let object = objects[id] else {
            throw LuaError(releasedObjectAdvice)
        }
        return object
    }

    /// The metatable every Swift object shares, created on first use.
    private func objectMetatable() -> ObjectFunctionIDs {
        if let ids = objectFunctions { return ids }
        lua_createtable(L, 0, 4)
        let table = lua_absindex(L, -1)
        func set(_ name: String, _ function: @escaping SwiftFunction) {
            pushFunction(function)
            lua_setfield(L, table, name)
        }
        set("__index") { state in
            let object = try state.objectArgument(1)
            guard let name = state.argument(2).stringValue else { state.push(.nil); return 1 }
            if object.luaMethodNames.contains(name) {
                state.push(name)
                relais_lua_push_swift_closure(state.L, state.objectFunctions?.methodCaller ?? -1)
            } else {
                state.push(try object.luaField(name, state: state))
            }
            return 1
        }
        set("__newindex") { state in
            let object = try state.objectArgument(1)
            guard let name = state.argument(2).stringValue else { throw LuaError("field names are strings") }
            try object.luaSetField(name, state.argument(3), state: state)
            return 0
        }
        set("__gc") { state in
            if let id = state.objectID(at: 1) { state.objects[id] = nil }
            return 0
        }
        set("__tostring") { state in
            state.push(try state.objectArgument(1).luaTypeName)
            return 1
        }
        lua_pushstring(L, "relais object")
        lua_setfield(L, table, "__metatable")
        let reference = luaL_ref(L, relais_lua_registryindex())
        functions.append { state in
            lua_pushvalue(state.L, relais_lua_upvalueindex(2))
            let method = state.popString()
            let object = try state.objectArgument(1)
            let arguments = state.argumentCount > 1 ? (2...state.argumentCount).map { state.argument($0) } : []
            return try object.luaCallPushing(method, arguments, state: state)
        }
        let ids = ObjectFunctionIDs(metatableReference: reference, methodCaller: Int32(functions.count - 1))
        objectFunctions = ids
        return ids
    }
}
