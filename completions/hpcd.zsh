#compdef hpcd

autoload -U is-at-least

_hpcd() {
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
'-V[Print version]' \
'--version[Print version]' \
":: :_hpcd_commands" \
"*::: :->hpcd" \
&& ret=0
    case $state in
    (hpcd)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:hpcd-command-$line[1]:"
        case $line[1] in
            (head)
_arguments "${_arguments_options[@]}" : \
'--state-dir=[Directory of the state database and task output (default\: the embedded head node'\''s)]:DIR:_files' \
'--socket=[Unix socket to listen on (default\: hpcd.sock in the state directory)]:PATH:_files' \
'--nodes=[Splits this machine into N virtual nodes (default from the config file, else 1)]:N:_default' \
'--cores-per-node=[Cores of each virtual node (default\: the CPUs divided evenly)]:N:_default' \
'*--node-group=[A node group of the virtual nodes\: NAME (every node), NAME\:COUNT (the next COUNT nodes) or NAME\:FIRST-LAST (those nodes, numbered from 1); repeat for more]:NAME:_default' \
'--shared[Lets every local user connect (they are told apart by their credentials; only owners change their jobs)]' \
'--quiet[Prints nothing when all goes well]' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(local)
_arguments "${_arguments_options[@]}" : \
'-h[Print help]' \
'--help[Print help]' \
":: :_hpcd__subcmd__local_commands" \
"*::: :->local" \
&& ret=0

    case $state in
    (local)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:hpcd-local-command-$line[1]:"
        case $line[1] in
            (start)
_arguments "${_arguments_options[@]}" : \
'--nodes=[Splits this machine into N virtual nodes (default from the config file, else 1)]:N:_default' \
'--cores-per-node=[Cores of each virtual node (default\: the CPUs divided evenly)]:N:_default' \
'*--node-group=[A node group of the virtual nodes\: NAME (every node), NAME\:COUNT (the next COUNT nodes) or NAME\:FIRST-LAST (those nodes, numbered from 1); repeat for more]:NAME:_default' \
'--quiet[Prints nothing when all goes well]' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(stop)
_arguments "${_arguments_options[@]}" : \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(status)
_arguments "${_arguments_options[@]}" : \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
":: :_hpcd__subcmd__local__subcmd__help_commands" \
"*::: :->help" \
&& ret=0

    case $state in
    (help)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:hpcd-local-help-command-$line[1]:"
        case $line[1] in
            (start)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(stop)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(status)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
        esac
    ;;
esac
;;
(status)
_arguments "${_arguments_options[@]}" : \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(run-task)
_arguments "${_arguments_options[@]}" : \
'-h[Print help]' \
'--help[Print help]' \
':dir -- The run'\''s directory:_files' \
&& ret=0
;;
(run-rank)
_arguments "${_arguments_options[@]}" : \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(slurm-job)
_arguments "${_arguments_options[@]}" : \
'-h[Print help]' \
'--help[Print help]' \
':dir -- The job'\''s record directory:_files' \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
":: :_hpcd__subcmd__help_commands" \
"*::: :->help" \
&& ret=0

    case $state in
    (help)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:hpcd-help-command-$line[1]:"
        case $line[1] in
            (head)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(local)
_arguments "${_arguments_options[@]}" : \
":: :_hpcd__subcmd__help__subcmd__local_commands" \
"*::: :->local" \
&& ret=0

    case $state in
    (local)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:hpcd-help-local-command-$line[1]:"
        case $line[1] in
            (start)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(stop)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(status)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
(status)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(run-task)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(run-rank)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(slurm-job)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
        esac
    ;;
esac
}

(( $+functions[_hpcd_commands] )) ||
_hpcd_commands() {
    local commands; commands=(
'head:Runs a head node in the foreground, with this machine as its compute node(s)' \
'local:Starts, stops or reports the embedded head node of this user (the one the CLIs start by themselves)' \
'status:Reports the embedded head node'\''s status (same as \`hpcd local status\`)' \
'run-task:Supervises one task run (started by the node agent; not for users)' \
'run-rank:Supervises one MPI rank (started by the launch service with the request on stdin and mpiexec'\''s connection as descriptor 3; not for users)' \
'slurm-job:Runs the tasks of a job the Slurm backend submitted, as its batch script (not for users)' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'hpcd commands' commands "$@"
}
(( $+functions[_hpcd__subcmd__head_commands] )) ||
_hpcd__subcmd__head_commands() {
    local commands; commands=()
    _describe -t commands 'hpcd head commands' commands "$@"
}
(( $+functions[_hpcd__subcmd__help_commands] )) ||
_hpcd__subcmd__help_commands() {
    local commands; commands=(
'head:Runs a head node in the foreground, with this machine as its compute node(s)' \
'local:Starts, stops or reports the embedded head node of this user (the one the CLIs start by themselves)' \
'status:Reports the embedded head node'\''s status (same as \`hpcd local status\`)' \
'run-task:Supervises one task run (started by the node agent; not for users)' \
'run-rank:Supervises one MPI rank (started by the launch service with the request on stdin and mpiexec'\''s connection as descriptor 3; not for users)' \
'slurm-job:Runs the tasks of a job the Slurm backend submitted, as its batch script (not for users)' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'hpcd help commands' commands "$@"
}
(( $+functions[_hpcd__subcmd__help__subcmd__head_commands] )) ||
_hpcd__subcmd__help__subcmd__head_commands() {
    local commands; commands=()
    _describe -t commands 'hpcd help head commands' commands "$@"
}
(( $+functions[_hpcd__subcmd__help__subcmd__help_commands] )) ||
_hpcd__subcmd__help__subcmd__help_commands() {
    local commands; commands=()
    _describe -t commands 'hpcd help help commands' commands "$@"
}
(( $+functions[_hpcd__subcmd__help__subcmd__local_commands] )) ||
_hpcd__subcmd__help__subcmd__local_commands() {
    local commands; commands=(
'start:Starts the embedded head node in the background, unless it runs already' \
'stop:Stops the embedded head node. Running tasks go on; it finds them again when it starts' \
'status:Reports whether the embedded head node runs, and its nodes and jobs' \
    )
    _describe -t commands 'hpcd help local commands' commands "$@"
}
(( $+functions[_hpcd__subcmd__help__subcmd__local__subcmd__start_commands] )) ||
_hpcd__subcmd__help__subcmd__local__subcmd__start_commands() {
    local commands; commands=()
    _describe -t commands 'hpcd help local start commands' commands "$@"
}
(( $+functions[_hpcd__subcmd__help__subcmd__local__subcmd__status_commands] )) ||
_hpcd__subcmd__help__subcmd__local__subcmd__status_commands() {
    local commands; commands=()
    _describe -t commands 'hpcd help local status commands' commands "$@"
}
(( $+functions[_hpcd__subcmd__help__subcmd__local__subcmd__stop_commands] )) ||
_hpcd__subcmd__help__subcmd__local__subcmd__stop_commands() {
    local commands; commands=()
    _describe -t commands 'hpcd help local stop commands' commands "$@"
}
(( $+functions[_hpcd__subcmd__help__subcmd__run-rank_commands] )) ||
_hpcd__subcmd__help__subcmd__run-rank_commands() {
    local commands; commands=()
    _describe -t commands 'hpcd help run-rank commands' commands "$@"
}
(( $+functions[_hpcd__subcmd__help__subcmd__run-task_commands] )) ||
_hpcd__subcmd__help__subcmd__run-task_commands() {
    local commands; commands=()
    _describe -t commands 'hpcd help run-task commands' commands "$@"
}
(( $+functions[_hpcd__subcmd__help__subcmd__slurm-job_commands] )) ||
_hpcd__subcmd__help__subcmd__slurm-job_commands() {
    local commands; commands=()
    _describe -t commands 'hpcd help slurm-job commands' commands "$@"
}
(( $+functions[_hpcd__subcmd__help__subcmd__status_commands] )) ||
_hpcd__subcmd__help__subcmd__status_commands() {
    local commands; commands=()
    _describe -t commands 'hpcd help status commands' commands "$@"
}
(( $+functions[_hpcd__subcmd__local_commands] )) ||
_hpcd__subcmd__local_commands() {
    local commands; commands=(
'start:Starts the embedded head node in the background, unless it runs already' \
'stop:Stops the embedded head node. Running tasks go on; it finds them again when it starts' \
'status:Reports whether the embedded head node runs, and its nodes and jobs' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'hpcd local commands' commands "$@"
}
(( $+functions[_hpcd__subcmd__local__subcmd__help_commands] )) ||
_hpcd__subcmd__local__subcmd__help_commands() {
    local commands; commands=(
'start:Starts the embedded head node in the background, unless it runs already' \
'stop:Stops the embedded head node. Running tasks go on; it finds them again when it starts' \
'status:Reports whether the embedded head node runs, and its nodes and jobs' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'hpcd local help commands' commands "$@"
}
(( $+functions[_hpcd__subcmd__local__subcmd__help__subcmd__help_commands] )) ||
_hpcd__subcmd__local__subcmd__help__subcmd__help_commands() {
    local commands; commands=()
    _describe -t commands 'hpcd local help help commands' commands "$@"
}
(( $+functions[_hpcd__subcmd__local__subcmd__help__subcmd__start_commands] )) ||
_hpcd__subcmd__local__subcmd__help__subcmd__start_commands() {
    local commands; commands=()
    _describe -t commands 'hpcd local help start commands' commands "$@"
}
(( $+functions[_hpcd__subcmd__local__subcmd__help__subcmd__status_commands] )) ||
_hpcd__subcmd__local__subcmd__help__subcmd__status_commands() {
    local commands; commands=()
    _describe -t commands 'hpcd local help status commands' commands "$@"
}
(( $+functions[_hpcd__subcmd__local__subcmd__help__subcmd__stop_commands] )) ||
_hpcd__subcmd__local__subcmd__help__subcmd__stop_commands() {
    local commands; commands=()
    _describe -t commands 'hpcd local help stop commands' commands "$@"
}
(( $+functions[_hpcd__subcmd__local__subcmd__start_commands] )) ||
_hpcd__subcmd__local__subcmd__start_commands() {
    local commands; commands=()
    _describe -t commands 'hpcd local start commands' commands "$@"
}
(( $+functions[_hpcd__subcmd__local__subcmd__status_commands] )) ||
_hpcd__subcmd__local__subcmd__status_commands() {
    local commands; commands=()
    _describe -t commands 'hpcd local status commands' commands "$@"
}
(( $+functions[_hpcd__subcmd__local__subcmd__stop_commands] )) ||
_hpcd__subcmd__local__subcmd__stop_commands() {
    local commands; commands=()
    _describe -t commands 'hpcd local stop commands' commands "$@"
}
(( $+functions[_hpcd__subcmd__run-rank_commands] )) ||
_hpcd__subcmd__run-rank_commands() {
    local commands; commands=()
    _describe -t commands 'hpcd run-rank commands' commands "$@"
}
(( $+functions[_hpcd__subcmd__run-task_commands] )) ||
_hpcd__subcmd__run-task_commands() {
    local commands; commands=()
    _describe -t commands 'hpcd run-task commands' commands "$@"
}
(( $+functions[_hpcd__subcmd__slurm-job_commands] )) ||
_hpcd__subcmd__slurm-job_commands() {
    local commands; commands=()
    _describe -t commands 'hpcd slurm-job commands' commands "$@"
}
(( $+functions[_hpcd__subcmd__status_commands] )) ||
_hpcd__subcmd__status_commands() {
    local commands; commands=()
    _describe -t commands 'hpcd status commands' commands "$@"
}

if [ "$funcstack[1]" = "_hpcd" ]; then
    _hpcd "$@"
else
    compdef _hpcd hpcd
fi
