#compdef mpipingpong
# zsh completion for mpipingpong: options until the program, then files
local -a opts
opts=(--json --max-latency --min-throughput -h -m -oa -ob -op -oq -p -pb -pc -pl -pt -r -rs -s -t)
if [[ $PREFIX == -* ]]; then
    compadd -a opts
else
    _files
fi
