#!/usr/bin/env node
import "../dist/bottle.mjs"
