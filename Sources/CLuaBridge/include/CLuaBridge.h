#ifndef RELAIS_CLUABRIDGE_H
#define RELAIS_CLUABRIDGE_H

#include <stddef.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

/// Per-state limits and accounting, owned by the Swift side and passed to
/// Lua as the allocator's user data.
typedef struct relais_lua_limits {
    size_t memory_used;
    /// Soft cap: past it the next count hook raises an error with file:line.
    size_t memory_limit;
    /// Past this, allocations fail outright (one instruction can ask for a lot).
    size_t memory_hard_limit;
    /// 1 while Lua code runs under relais_lua_pcall; Swift code runs with
    /// the cap lifted so that no allocation error is raised in a Swift frame.
    int enforcing;
    int memory_exceeded;
    long long instructions_left;
    int budget_exhausted;
    /// Calls in progress: a Swift function may call back into Lua (require,
    /// presets); the inner call shares the outer call's budget.
    int depth;
} relais_lua_limits;

/// A Swift function callable from Lua. It returns the number of results it
/// pushed, or -1 with an error message on top of the stack; the C
/// trampoline then raises the error, so no longjmp crosses a Swift frame.
/// It returns RELAIS_LUA_SUSPEND to suspend the coroutine that called it
/// (the trampoline yields; the values the coroutine is resumed with become
/// the function's results).
typedef int (*relais_swift_function)(lua_State *L, int function_id);

#define RELAIS_LUA_SUSPEND (-2)

/// Installs the one dispatcher through which every Swift function is called.
void relais_lua_set_dispatcher(relais_swift_function dispatcher);

/// A new state using the limits' allocator, with a panic handler that
/// aborts with a message (a panic means an error escaped every pcall).
lua_State *relais_lua_newstate(relais_lua_limits *limits);

/// Opens the sandboxed standard libraries: base (without dofile, loadfile,
/// and with load restricted to text chunks), string (without dump), table,
/// math, utf8, coroutine, and os with only time, date and clock.
/// Returns a Lua status code; on error the message is on the stack.
int relais_lua_open_sandbox(lua_State *L);

/// Pushes a C closure that calls Swift function `function_id`.
void relais_lua_push_swift_function(lua_State *L, int function_id);

/// Loads a text chunk (binary chunks are refused). Returns a Lua status.
int relais_lua_load_text(lua_State *L, const char *buffer, size_t length, const char *chunkname);

/// Calls the function below `nargs` arguments in protected mode with an
/// instruction budget and the memory cap enforced. Returns a Lua status;
/// on error the message (with file:line where Lua knows it) is on the stack.
int relais_lua_pcall(lua_State *L, int nargs, int nresults, long long instruction_budget);

/// Starts or resumes coroutine `co` with `nargs` values on its stack, with
/// the memory cap enforced and `*instructions_left` as the instruction
/// budget (what is left is written back, so a call's budget counts Lua work
/// across its waits). Returns LUA_OK (results on `co`'s stack, their count
/// in `*nresults`), LUA_YIELD, or an error status with the message on top.
int relais_lua_resume(lua_State *co, lua_State *from, int nargs, int *nresults, long long *instructions_left);

/// Lua's `tostring` on the value at `index`, in protected mode; pushes the
/// resulting string (or an error message) and returns a Lua status.
int relais_lua_tostring(lua_State *L, int index);

/// Like relais_lua_push_swift_function, with the value on top of the stack
/// (popped) as a second upvalue the Swift function can read.
void relais_lua_push_swift_closure(lua_State *L, int function_id);

/// Macros of the Lua API, as functions Swift can call.
static inline void **relais_lua_extraspace(lua_State *L) { return (void **)lua_getextraspace(L); }
static inline int relais_lua_registryindex(void) { return LUA_REGISTRYINDEX; }
static inline int relais_lua_upvalueindex(int index) { return lua_upvalueindex(index); }
static inline int relais_lua_ridx_globals(void) { return LUA_RIDX_GLOBALS; }

#endif
