# Turns a text asset into a C++ source defining `const char* <SYMBOL>` so the binary never
# depends on where assets were installed. Invoked with -DINPUT= -DOUTPUT= -DSYMBOL=.
file(READ "${INPUT}" content)
file(WRITE "${OUTPUT}" "// generated from ${INPUT}; do not edit\nnamespace bagnet::assets {\nextern const char* const ${SYMBOL};\nconst char* const ${SYMBOL} = R\"bagnet_asset(${content})bagnet_asset\";\n}\n")
