#ifndef RELAIS_CLUA_SHIM_H
#define RELAIS_CLUA_SHIM_H
#include <lua.h>
#include <lualib.h>
#include <lauxlib.h>
#endif
