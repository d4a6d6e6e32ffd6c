#compdef node

autoload -U is-at-least

_node() {
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
":: :_node_commands" \
"*::: :->node" \
&& ret=0
    case $state in
    (node)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:node-command-$line[1]:"
        case $line[1] in
            (list)
_arguments "${_arguments_options[@]}" : \
'--format=[Output format\: table (default), list, or json (\[extension\])]:list|table|json:_default' \
'--group=[Only nodes of this group]:group_name:_default' \
'--state=[Only nodes in this state (Online, Offline, Draining)]:state:_default' \
'--scheduler=[Head node to use\: this machine'\''s embedded head node (\`local\`, the default), or a head node'\''s Unix socket (\`unix\:/path\`). Default\: the CCP_SCHEDULER environment variable, then the config file]:name:_default' \
'--activeheadnode[Shows the name of the active head node only]' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(listcores)
_arguments "${_arguments_options[@]}" : \
'--format=[Output format\: table (default), list, or json (\[extension\])]:list|table|json:_default' \
'--jobid=[Only the cores allocated to this job]:jobID:_default' \
'--state=[Only cores in these states\: all, offline, idle, jobscheduled, taskrunning, readyfortask, taskscheduled (comma-separated; * means all)]:state_list:_default' \
'--scheduler=[Head node to use\: this machine'\''s embedded head node (\`local\`, the default), or a head node'\''s Unix socket (\`unix\:/path\`). Default\: the CCP_SCHEDULER environment variable, then the config file]:name:_default' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(offline)
_arguments "${_arguments_options[@]}" : \
'--scheduler=[Head node to use\: this machine'\''s embedded head node (\`local\`, the default), or a head node'\''s Unix socket (\`unix\:/path\`). Default\: the CCP_SCHEDULER environment variable, then the config file]:name:_default' \
'--all[Every node that is online]' \
'--force[Goes offline at once, canceling the jobs on the node, instead of draining (letting them finish) first]' \
'-h[Print help]' \
'--help[Print help]' \
'::name -- The node'\''s name:_default' \
&& ret=0
;;
(online)
_arguments "${_arguments_options[@]}" : \
'--scheduler=[Head node to use\: this machine'\''s embedded head node (\`local\`, the default), or a head node'\''s Unix socket (\`unix\:/path\`). Default\: the CCP_SCHEDULER environment variable, then the config file]:name:_default' \
'--all[Every node that is not online]' \
'-h[Print help]' \
'--help[Print help]' \
'::name -- The node'\''s name:_default' \
&& ret=0
;;
(view)
_arguments "${_arguments_options[@]}" : \
'--detailed=[Shows every property of the node]::true|false:_default' \
'--format=[Output format\: list, or json (\[extension\])]:list|json:_default' \
'--scheduler=[Head node to use\: this machine'\''s embedded head node (\`local\`, the default), or a head node'\''s Unix socket (\`unix\:/path\`). Default\: the CCP_SCHEDULER environment variable, then the config file]:name:_default' \
'-h[Print help]' \
'--help[Print help]' \
':name -- The node'\''s name:_default' \
&& ret=0
;;
        esac
    ;;
esac
}

(( $+functions[_node_commands] )) ||
_node_commands() {
    local commands; commands=(
'list:Displays information about the nodes in the HPC cluster' \
'listcores:Displays a list of the cores on the nodes in the HPC cluster' \
'offline:Takes the specified node or all nodes offline (draining first unless /force)' \
'online:Brings the specified node or all nodes online' \
'view:Displays the property values of a node' \
    )
    _describe -t commands 'node commands' commands "$@"
}
(( $+functions[_node__subcmd__list_commands] )) ||
_node__subcmd__list_commands() {
    local commands; commands=()
    _describe -t commands 'node list commands' commands "$@"
}
(( $+functions[_node__subcmd__listcores_commands] )) ||
_node__subcmd__listcores_commands() {
    local commands; commands=()
    _describe -t commands 'node listcores commands' commands "$@"
}
(( $+functions[_node__subcmd__offline_commands] )) ||
_node__subcmd__offline_commands() {
    local commands; commands=()
    _describe -t commands 'node offline commands' commands "$@"
}
(( $+functions[_node__subcmd__online_commands] )) ||
_node__subcmd__online_commands() {
    local commands; commands=()
    _describe -t commands 'node online commands' commands "$@"
}
(( $+functions[_node__subcmd__view_commands] )) ||
_node__subcmd__view_commands() {
    local commands; commands=()
    _describe -t commands 'node view commands' commands "$@"
}

if [ "$funcstack[1]" = "_node" ]; then
    _node "$@"
else
    compdef _node node
fi
