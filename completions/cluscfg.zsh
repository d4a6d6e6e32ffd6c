#compdef cluscfg

autoload -U is-at-least

_cluscfg() {
    typeset -A opt_args
    typeset -a _arguments_options
    local ret=1

    if is-at-least 5.2; then
        _arguments_options=(-s -S -C)
    else
        _arguments_options=(-s -C)
    fi

    local context curcontext="$curcontext" state line
    _arguments "${_arguments_options[@]}" : \
'-h[Print help]' \
'--help[Print help]' \
":: :_cluscfg_commands" \
"*::: :->cluscfg" \
&& ret=0
    case $state in
    (cluscfg)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:cluscfg-command-$line[1]:"
        case $line[1] in
            (listenvs)
_arguments "${_arguments_options[@]}" : \
'--scheduler=[Head node to use\: this machine'\''s embedded head node (\`local\`, the default), or a head node'\''s Unix socket (\`unix\:/path\`). Default\: the CCP_SCHEDULER environment variable, then the config file]:name:_default' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(setenvs)
_arguments "${_arguments_options[@]}" : \
'--scheduler=[Head node to use\: this machine'\''s embedded head node (\`local\`, the default), or a head node'\''s Unix socket (\`unix\:/path\`). Default\: the CCP_SCHEDULER environment variable, then the config file]:name:_default' \
'-h[Print help]' \
'--help[Print help]' \
'*::vars -- Variables as <name1>=<value1> \[<name2>=<value2>…\]:_default' \
&& ret=0
;;
(view)
_arguments "${_arguments_options[@]}" : \
'--format=[Output format\: list, or json (\[extension\])]:list|json:_default' \
'--scheduler=[Head node to use\: this machine'\''s embedded head node (\`local\`, the default), or a head node'\''s Unix socket (\`unix\:/path\`). Default\: the CCP_SCHEDULER environment variable, then the config file]:name:_default' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
        esac
    ;;
esac
}

(( $+functions[_cluscfg_commands] )) ||
_cluscfg_commands() {
    local commands; commands=(
'listenvs:Displays the values of the cluster-wide environment variables' \
'setenvs:Sets cluster-wide environment variables; <name>= with no value unsets one' \
'view:Displays a summary of the cluster' \
    )
    _describe -t commands 'cluscfg commands' commands "$@"
}
(( $+functions[_cluscfg__subcmd__listenvs_commands] )) ||
_cluscfg__subcmd__listenvs_commands() {
    local commands; commands=()
    _describe -t commands 'cluscfg listenvs commands' commands "$@"
}
(( $+functions[_cluscfg__subcmd__setenvs_commands] )) ||
_cluscfg__subcmd__setenvs_commands() {
    local commands; commands=()
    _describe -t commands 'cluscfg setenvs commands' commands "$@"
}
(( $+functions[_cluscfg__subcmd__view_commands] )) ||
_cluscfg__subcmd__view_commands() {
    local commands; commands=()
    _describe -t commands 'cluscfg view commands' commands "$@"
}

if [ "$funcstack[1]" = "_cluscfg" ]; then
    _cluscfg "$@"
else
    compdef _cluscfg cluscfg
fi
