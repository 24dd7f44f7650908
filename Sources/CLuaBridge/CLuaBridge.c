#include "CLuaBridge.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static relais_swift_function dispatcher = NULL;

/// Instructions between two count-hook calls.
#define RELAIS_HOOK_STEP 1000

void relais_lua_set_dispatcher(relais_swift_function function) {
    dispatcher = function;
}

static relais_lua_limits *limits_of(lua_State *L) {
    void *ud = NULL;
    lua_getallocf(L, &ud);
    return (relais_lua_limits *)ud;
}

static void *relais_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    relais_lua_limits *limits = (relais_lua_limits *)ud;
    size_t old_size = ptr ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        limits->memory_used -= old_size;
        return NULL;
    }
    size_t new_used = limits->memory_used - old_size + nsize;
    if (limits->enforcing && nsize > old_size) {
        if (limits->memory_hard_limit && new_used > limits->memory_hard_limit) {
            limits->memory_exceeded = 1;
            return NULL;
        }
        if (limits->memory_limit && new_used > limits->memory_limit) {
            limits->memory_exceeded = 1;
        }
    }
    void *block = realloc(ptr, nsize);
    if (block) limits->memory_used = new_used;
    return block;
}

static int relais_panic(lua_State *L) {
    const char *message = lua_tostring(L, -1);
    fprintf(stderr, "relais: unprotected Lua error: %s\n", message ? message : "(not a string)");
    abort();
}

lua_State *relais_lua_newstate(relais_lua_limits *limits) {
    lua_State *L = lua_newstate(relais_alloc, limits);
    if (L) lua_atpanic(L, relais_panic);
    return L;
}

/* Raises `message` at the line the hook interrupted (level 0 in a hook). */
static void raise_here(lua_State *L, const char *message) {
    luaL_where(L, 0);
    lua_pushstring(L, message);
    lua_concat(L, 2);
    lua_error(L);
}

static void relais_count_hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    relais_lua_limits *limits = limits_of(L);
    if (!limits->enforcing) return;
    if (limits->memory_exceeded) {
        lua_sethook(L, relais_count_hook, LUA_MASKCOUNT, 1);
        raise_here(L, "memory limit exceeded");
    }
    limits->instructions_left -= RELAIS_HOOK_STEP;
    if (limits->instructions_left <= 0 || limits->budget_exhausted) {
        limits->budget_exhausted = 1;
        /* Raise again at every instruction so a pcall in the script cannot go on. */
        lua_sethook(L, relais_count_hook, LUA_MASKCOUNT, 1);
        raise_here(L, "instruction budget exhausted");
    }
}

static int relais_trampoline(lua_State *L) {
    relais_lua_limits *limits = limits_of(L);
    int id = (int)lua_tointeger(L, lua_upvalueindex(1));
    int was_enforcing = limits->enforcing;
    limits->enforcing = 0;
    int results = dispatcher ? dispatcher(L, id) : -1;
    limits->enforcing = was_enforcing;
    if (results == RELAIS_LUA_SUSPEND) return lua_yield(L, 0);
    if (results < 0) {
        if (!dispatcher) lua_pushstring(L, "no Swift dispatcher installed");
        luaL_where(L, 1);
        lua_insert(L, -2);
        lua_concat(L, 2);
        return lua_error(L);
    }
    return results;
}

void relais_lua_push_swift_function(lua_State *L, int function_id) {
    lua_pushinteger(L, function_id);
    lua_pushcclosure(L, relais_trampoline, 1);
}

void relais_lua_push_swift_closure(lua_State *L, int function_id) {
    lua_pushinteger(L, function_id);
    lua_insert(L, -2);
    lua_pushcclosure(L, relais_trampoline, 2);
}

/* load(chunk [, chunkname [, mode [, env]]]) limited to text chunks. */
static int relais_load(lua_State *L) {
    int env = !lua_isnone(L, 4) ? 4 : 0;
    size_t length;
    const char *chunkname = luaL_optstring(L, 2, "=(load)");
    int status;
    if (lua_type(L, 1) == LUA_TSTRING) {
        const char *text = lua_tolstring(L, 1, &length);
        status = luaL_loadbufferx(L, text, length, chunkname, "t");
    } else {
        return luaL_error(L, "load: only strings are accepted in the sandbox");
    }
    if (status != LUA_OK) {
        luaL_pushfail(L);
        lua_insert(L, -2);
        return 2;
    }
    if (env) {
        lua_pushvalue(L, env);
        if (!lua_setupvalue(L, -2, 1)) lua_pop(L, 1);
    }
    return 1;
}

static void remove_field(lua_State *L, const char *table, const char *field) {
    if (lua_getglobal(L, table) == LUA_TTABLE) {
        lua_pushnil(L);
        lua_setfield(L, -2, field);
    }
    lua_pop(L, 1);
}

static int open_sandbox(lua_State *L) {
    luaL_requiref(L, LUA_GNAME, luaopen_base, 1);
    luaL_requiref(L, LUA_STRLIBNAME, luaopen_string, 1);
    luaL_requiref(L, LUA_TABLIBNAME, luaopen_table, 1);
    luaL_requiref(L, LUA_MATHLIBNAME, luaopen_math, 1);
    luaL_requiref(L, LUA_UTF8LIBNAME, luaopen_utf8, 1);
    luaL_requiref(L, LUA_COLIBNAME, luaopen_coroutine, 1);
    luaL_requiref(L, LUA_OSLIBNAME, luaopen_os, 1);
    lua_pop(L, 7);
    /* os: only time, date and clock, in a fresh table. */
    lua_getglobal(L, LUA_OSLIBNAME);
    lua_createtable(L, 0, 3);
    const char *kept[] = {"time", "date", "clock"};
    for (int i = 0; i < 3; i++) {
        lua_getfield(L, -2, kept[i]);
        lua_setfield(L, -2, kept[i]);
    }
    lua_setglobal(L, LUA_OSLIBNAME);
    lua_pop(L, 1);
    lua_pushnil(L); lua_setglobal(L, "dofile");
    lua_pushnil(L); lua_setglobal(L, "loadfile");
    lua_pushcfunction(L, relais_load); lua_setglobal(L, "load");
    remove_field(L, LUA_STRLIBNAME, "dump");
    /* String metatable's __index stays string; dump is gone from it too. */
    return 0;
}

int relais_lua_open_sandbox(lua_State *L) {
    lua_pushcfunction(L, open_sandbox);
    return lua_pcall(L, 0, 0, 0);
}

int relais_lua_load_text(lua_State *L, const char *buffer, size_t length, const char *chunkname) {
    return luaL_loadbufferx(L, buffer, length, chunkname, "t");
}

/* Resets the per-call accounting before an outermost call or resume. */
static void begin_call(lua_State *L, relais_lua_limits *limits, long long instruction_budget) {
    limits->depth = 1;
    /* Garbage left by an earlier call must not count against this one. */
    if (limits->memory_limit && limits->memory_used > limits->memory_limit / 2) lua_gc(L, LUA_GCCOLLECT);
    limits->instructions_left = instruction_budget;
    limits->budget_exhausted = 0;
    limits->memory_exceeded = 0;
    lua_sethook(L, relais_count_hook, LUA_MASKCOUNT, RELAIS_HOOK_STEP);
    limits->enforcing = 1;
}

/* Ends an outermost call: a script that caught a budget error still failed. */
static int end_call(lua_State *L, relais_lua_limits *limits, int status, int nresults) {
    limits->enforcing = 0;
    limits->depth = 0;
    lua_sethook(L, NULL, 0, 0);
    if ((status == LUA_OK || status == LUA_YIELD) && (limits->budget_exhausted || limits->memory_exceeded)) {
        lua_pop(L, nresults);
        lua_pushstring(L, limits->budget_exhausted ? "instruction budget exhausted" : "memory limit exceeded");
        status = LUA_ERRRUN;
    }
    if (status == LUA_ERRMEM) {
        lua_pop(L, 1);
        lua_pushstring(L, "memory limit exceeded");
    }
    return status;
}

int relais_lua_resume(lua_State *co, lua_State *from, int nargs, int *nresults, long long *instructions_left) {
    relais_lua_limits *limits = limits_of(co);
    *nresults = 0;
    if (limits->depth > 0) {
        lua_pushstring(co, "a coroutine cannot be resumed while Lua runs");
        return LUA_ERRRUN;
    }
    begin_call(co, limits, *instructions_left);
    int status = lua_resume(co, from, nargs, nresults);
    *instructions_left = limits->instructions_left;
    status = end_call(co, limits, status, status == LUA_OK || status == LUA_YIELD ? *nresults : 0);
    if (status != LUA_OK && status != LUA_YIELD) *nresults = 0;
    return status;
}

int relais_lua_pcall(lua_State *L, int nargs, int nresults, long long instruction_budget) {
    relais_lua_limits *limits = limits_of(L);
    if (limits->depth > 0) {
        int was_enforcing = limits->enforcing;
        limits->enforcing = 1;
        limits->depth++;
        int status = lua_pcall(L, nargs, nresults, 0);
        limits->depth--;
        limits->enforcing = was_enforcing;
        return status;
    }
    begin_call(L, limits, instruction_budget);
    int status = lua_pcall(L, nargs, nresults, 0);
    return end_call(L, limits, status, nresults == LUA_MULTRET ? 0 : nresults);
}

static int tostring_protected(lua_State *L) {
    luaL_tolstring(L, 1, NULL);
    return 1;
}

int relais_lua_tostring(lua_State *L, int index) {
    index = lua_absindex(L, index);
    lua_pushcfunction(L, tostring_protected);
    lua_pushvalue(L, index);
    return lua_pcall(L, 1, 1, 0);
}
