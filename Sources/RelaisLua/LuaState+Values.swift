import CLua
import CLuaBridge

// MARK: - Swift to Lua

extension LuaState {
    /// Pushes a copy of `value`. Tables become new Lua tables.
    public func push(_ value: LuaValue) {
        switch value {
        case .nil:
            lua_pushnil(L)
        case .boolean(let flag):
            lua_pushboolean(L, flag ? 1 : 0)
        case .integer(let number):
            lua_pushinteger(L, number)
        case .number(let number):
            lua_pushnumber(L, number)
        case .string(let string):
            push(bytes: string.bytes)
        case .table(let table):
            lua_createtable(L, 0, Int32(table.entries.count))
            for entry in table.entries where !entry.key.isNil {
                push(entry.key)
                push(entry.value)
                lua_rawset(L, -3)
            }
        case .function(let reference), .reference(let reference):
            if (try? push(reference: reference)) == nil { lua_pushnil(L) }
        case .object(let id):
            pushObject(id: id)
        case .other:
            lua_pushnil(L)
        }
    }

    public func push(bytes: some Collection<UInt8>) {
        let array = Array(bytes)
        array.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { chars in
                _ = lua_pushlstring(L, chars.baseAddress, chars.count)
            }
        }
    }

    public func push(_ text: String) {
        push(bytes: Array(text.utf8))
    }

    func pushFunction(_ function: LuaReference) throws {
        try push(reference: function)
    }

    /// Pushes the value a reference holds.
    public func push(reference: LuaReference) throws {
        guard reference.stateID == ObjectIdentifier(self) else {
            throw LuaError("a value from another Lua state cannot be used here")
        }
        lua_rawgeti(L, relais_lua_registryindex(), lua_Integer(reference.reference))
    }

    /// A new empty table kept in the registry (e.g. `session.notes`).
    public func makeTableReference() -> LuaReference {
        lua_createtable(L, 0, 0)
        defer { pop() }
        return reference(at: -1)
    }

    /// A table in the registry holding a copy of `value`.
    public func makeReference(to value: LuaValue) -> LuaReference {
        push(value)
        defer { pop() }
        return reference(at: -1)
    }

    /// Copies the value a reference holds.
    public func value(of reference: LuaReference) -> LuaValue {
        guard (try? push(reference: reference)) != nil else { return .nil }
        defer { pop() }
        return value(at: -1)
    }

    /// Keeps the value at `index` alive in the registry and returns a handle.
    func reference(at index: Int32) -> LuaReference {
        lua_pushvalue(L, index)
        return LuaReference(reference: luaL_ref(L, relais_lua_registryindex()), stateID: ObjectIdentifier(self))
    }
}

// MARK: - Lua to Swift

extension LuaState {
    /// Copies the value at `index`. Tables are copied deeply (up to 32
    /// levels; deeper, or cyclic, parts become `.other("table")`).
    public func value(at index: Int32) -> LuaValue {
        value(at: lua_absindex(L, index), depth: 0)
    }

    private func value(at index: Int32, depth: Int) -> LuaValue {
        switch lua_type(L, index) {
        case LUA_TNIL, LUA_TNONE:
            return .nil
        case LUA_TBOOLEAN:
            return .boolean(lua_toboolean(L, index) != 0)
        case LUA_TNUMBER:
            if lua_isinteger(L, index) != 0 { return .integer(lua_tointegerx(L, index, nil)) }
            return .number(lua_tonumberx(L, index, nil))
        case LUA_TSTRING:
            var length = 0
            guard let pointer = lua_tolstring(L, index, &length) else { return .nil }
            return .string(LuaString(bytes: Array(UnsafeRawBufferPointer(start: pointer, count: length))))
        case LUA_TTABLE:
            guard depth < 32 else { return .other("table") }
            var entries: [LuaTable.Entry] = []
            lua_pushnil(L)
            while lua_next(L, index) != 0 {
                let key = value(at: lua_absindex(L, -2), depth: depth + 1)
                let item = value(at: lua_absindex(L, -1), depth: depth + 1)
                entries.append(LuaTable.Entry(key: key, value: item))
                pop()
            }
            return .table(LuaTable(entries: entries))
        case LUA_TFUNCTION:
            return .function(reference(at: index))
        case LUA_TUSERDATA:
            if let id = objectID(at: index) { return .object(id) }
            return .other("userdata")
        default:
            return .other(String(cString: lua_typename(L, lua_type(L, index))))
        }
    }

    /// `tostring` of the value at `index`, honouring `__tostring`, in
    /// protected mode (for `relais.log` and `print`).
    public func describe(at index: Int32) -> String {
        let absolute = lua_absindex(L, index)
        guard relais_lua_tostring(L, absolute) == LUA_OK else {
            return "(tostring failed: \(popString()))"
        }
        return popString()
    }
}
