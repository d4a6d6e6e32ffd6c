# bash completion for mpipingpong: options until the program, then files
_mpipingpong() {
    local cur=${COMP_WORDS[COMP_CWORD]}
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "--json --max-latency --min-throughput -h -m -oa -ob -op -oq -p -pb -pc -pl -pt -r -rs -s -t" -- "$cur"))
    fi
}
complete -o default -o bashdefault -F _mpipingpong mpipingpong
