#compdef task

autoload -U is-at-least

_task() {
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
":: :_task_commands" \
"*::: :->task" \
&& ret=0
    case $state in
    (task)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:task-command-$line[1]:"
        case $line[1] in
            (cancel)
_arguments "${_arguments_options[@]}" : \
'--message=[Why, recorded as the task'\''s error message]:message:_default' \
'--scheduler=[Head node to use\: this machine'\''s embedded head node (\`local\`, the default), or a head node'\''s Unix socket (\`unix\:/path\`). Default\: the CCP_SCHEDULER environment variable, then the config file]:name:_default' \
'-h[Print help]' \
'--help[Print help]' \
':id -- The task, as <jobID>.<taskID>:_default' \
&& ret=0
;;
(finish)
_arguments "${_arguments_options[@]}" : \
'--message=[Why, recorded as the task'\''s error message]:message:_default' \
'--scheduler=[Head node to use\: this machine'\''s embedded head node (\`local\`, the default), or a head node'\''s Unix socket (\`unix\:/path\`). Default\: the CCP_SCHEDULER environment variable, then the config file]:name:_default' \
'-h[Print help]' \
'--help[Print help]' \
':id -- The task, as <jobID>.<taskID>:_default' \
&& ret=0
;;
(requeue)
_arguments "${_arguments_options[@]}" : \
'--scheduler=[Head node to use\: this machine'\''s embedded head node (\`local\`, the default), or a head node'\''s Unix socket (\`unix\:/path\`). Default\: the CCP_SCHEDULER environment variable, then the config file]:name:_default' \
'-h[Print help]' \
'--help[Print help]' \
':id -- The task, as <jobID>.<taskID>:_default' \
&& ret=0
;;
(view)
_arguments "${_arguments_options[@]}" : \
'--detailed=[Shows every property of the task]::true|false:_default' \
'--format=[Output format\: list, or json (\[extension\])]:list|json:_default' \
'--scheduler=[Head node to use\: this machine'\''s embedded head node (\`local\`, the default), or a head node'\''s Unix socket (\`unix\:/path\`). Default\: the CCP_SCHEDULER environment variable, then the config file]:name:_default' \
'-h[Print help]' \
'--help[Print help]' \
':id -- The task, as <jobID>.<taskID>:_default' \
&& ret=0
;;
        esac
    ;;
esac
}

(( $+functions[_task_commands] )) ||
_task_commands() {
    local commands; commands=(
'cancel:Cancels the specified task and releases its resources' \
'finish:Finishes a running or queued task' \
'requeue:Requeues the specified task' \
'view:Displays information about the specified task' \
    )
    _describe -t commands 'task commands' commands "$@"
}
(( $+functions[_task__subcmd__cancel_commands] )) ||
_task__subcmd__cancel_commands() {
    local commands; commands=()
    _describe -t commands 'task cancel commands' commands "$@"
}
(( $+functions[_task__subcmd__finish_commands] )) ||
_task__subcmd__finish_commands() {
    local commands; commands=()
    _describe -t commands 'task finish commands' commands "$@"
}
(( $+functions[_task__subcmd__requeue_commands] )) ||
_task__subcmd__requeue_commands() {
    local commands; commands=()
    _describe -t commands 'task requeue commands' commands "$@"
}
(( $+functions[_task__subcmd__view_commands] )) ||
_task__subcmd__view_commands() {
    local commands; commands=()
    _describe -t commands 'task view commands' commands "$@"
}

if [ "$funcstack[1]" = "_task" ]; then
    _task "$@"
else
    compdef _task task
fi
