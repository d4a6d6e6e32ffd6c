#compdef job

autoload -U is-at-least

_job() {
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
":: :_job_commands" \
"*::: :->job" \
&& ret=0
    case $state in
    (job)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:job-command-$line[1]:"
        case $line[1] in
            (add)
_arguments "${_arguments_options[@]}" : \
'--depend=[Names of tasks of this job that must finish before this one starts, as <task_name1>\[,<task_name2>…\]]:task_name_list:_default' \
'--exclusive=[No other task may run on this task'\''s nodes]::true|false:_default' \
'--numcores=[Number of cores, as <min>\[-<max>\] (* for no maximum)]:min[-max]:_default' \
'--numnodes=[Number of nodes, as <min>\[-<max>\]]:min[-max]:_default' \
'--numsockets=[Number of sockets, as <min>\[-<max>\]]:min[-max]:_default' \
'--numprocessors=[Number of cores (the older name of /numcores)]:min[-max]:_default' \
'--requirednodes=[Nodes the task must run on (among the job'\''s), as <node1>\[,<node2>…\]]:node_list:_default' \
'--runtime=[Longest the task may run, as \[\[days\:\]hours\:\]minutes or Infinite]:time|Infinite:_default' \
'--validexitcodes=[Exit codes that count as success, as <int>|<start>..<end>\[,…\] (default 0)]:int|intStart..intEnd[,…]:_default' \
'--name=[Name of the task]:task_name:_default' \
'--env=[Environment variables of the task, as <name>=<value>\[;<name>=<value>…\]]:variable_and_value_list:_default' \
'--stdout=[File the task'\''s standard output goes to (relative to /workdir); without it the head node keeps the output (task view shows it)]:file_name:_default' \
'--stderr=[File the task'\''s standard error goes to]:file_name:_default' \
'--stdin=[File the task reads as standard input]:file_name:_default' \
'--workdir=[Working directory of the task (default\: the owner'\''s home directory)]:folder:_default' \
'--rerunnable=[The task may be run again after a failure of its node]::true|false:_default' \
'--type=[Task type; this head node runs Basic tasks]:type_name:_default' \
'--scheduler=[Head node to use\: this machine'\''s embedded head node (\`local\`, the default), or a head node'\''s Unix socket (\`unix\:/path\`). Default\: the CCP_SCHEDULER environment variable, then the config file]:name:_default' \
'-h[Print help]' \
'--help[Print help]' \
':id -- The job'\''s ID:_default' \
'*::command -- The task'\''s command line, passed on as given:_default' \
&& ret=0
;;
(cancel)
_arguments "${_arguments_options[@]}" : \
'--message=[Why, recorded as the job'\''s error message]:message:_default' \
'--scheduler=[Head node to use\: this machine'\''s embedded head node (\`local\`, the default), or a head node'\''s Unix socket (\`unix\:/path\`). Default\: the CCP_SCHEDULER environment variable, then the config file]:name:_default' \
'-h[Print help]' \
'--help[Print help]' \
':id -- The job'\''s ID:_default' \
&& ret=0
;;
(finish)
_arguments "${_arguments_options[@]}" : \
'--message=[Why, recorded as the job'\''s error message]:message:_default' \
'--scheduler=[Head node to use\: this machine'\''s embedded head node (\`local\`, the default), or a head node'\''s Unix socket (\`unix\:/path\`). Default\: the CCP_SCHEDULER environment variable, then the config file]:name:_default' \
'-h[Print help]' \
'--help[Print help]' \
':id -- The job'\''s ID:_default' \
&& ret=0
;;
(list)
_arguments "${_arguments_options[@]}" : \
'--format=[Output format\: table (default), list, or json (\[extension\])]:list|table|json:_default' \
'--jobname=[Only jobs with this name, or names starting with a prefix followed by *]:jobname:_default' \
'--jobtemplate=[Only jobs of this template]:TemplateName:_default' \
'--project=[Only jobs of this project]:ProjectName:_default' \
'(--status)--state=[Only jobs in these states, as <state1>\[,<state2>…\] or All]:state_list:_default' \
'--status=[Same as /state]:status_list:_default' \
'--submittime=[Only jobs submitted in the last N days]:days:_default' \
'--user=[Only jobs of this user, or * for every user]:UserId|*:_default' \
'--scheduler=[Head node to use\: this machine'\''s embedded head node (\`local\`, the default), or a head node'\''s Unix socket (\`unix\:/path\`). Default\: the CCP_SCHEDULER environment variable, then the config file]:name:_default' \
'--all[Lists all jobs; without it, only your Queued and Running jobs unless /state or /user says otherwise]' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(listtasks)
_arguments "${_arguments_options[@]}" : \
'--format=[Output format\: list (default), table, or json (\[extension\])]:list|table|json:_default' \
'(--status)--state=[Only tasks in these states, as <state1>\[,<state2>…\] or All]:state_list:_default' \
'--status=[Same as /state]:status_list:_default' \
'--scheduler=[Head node to use\: this machine'\''s embedded head node (\`local\`, the default), or a head node'\''s Unix socket (\`unix\:/path\`). Default\: the CCP_SCHEDULER environment variable, then the config file]:name:_default' \
'--expand[Lists each subtask of parametric tasks (there are none here)]' \
'-h[Print help]' \
'--help[Print help]' \
':id -- The job'\''s ID:_default' \
&& ret=0
;;
(modify)
_arguments "${_arguments_options[@]}" : \
'--askednodes=[Nodes the job may run on, as <node1>\[,<node2>…\]]:node_list:_default' \
'--requestednodes=[Same as /askednodes]:node_list:_default' \
'--corespernode=[Only nodes with this many cores, as <min>\[-<max>\]]:min[-max]:_default' \
'--customproperties=[Custom job properties, as <name>=<value>\[;<name>=<value>…\]]:property_list:_default' \
'--exclusive=[No other job may use the job'\''s nodes]::true|false:_default' \
'--failontaskfailure=[The job fails as soon as one of its tasks fails]::true|false:_default' \
'--holduntil=[Do not start the job before this time (M/d/yyyy h\:mm\:ss AM|PM) or this many minutes from now]:DateTime|minutes:_default' \
'--jobenv=[Environment variables set in every task of the job, as <name>=<value>\[;<name>=<value>…\]]:variable_and_value_list:_default' \
'--jobname=[Name of the job (at most 80 characters)]:job_name:_default' \
'--jobtemplate=[Job template (this head node has the template Default)]:job_template_name:_default' \
'--memorypernode=[Only nodes with this much memory in MB, as <min>\[-<max>\]]:min[-max]:_default' \
'--nodegroup=[Only nodes of these groups, as <group1>\[,<group2>…\]]:node_group_list:_default' \
'--nodegroupop=[How several node groups combine\: Intersect (in all), Union (in any) or Uniform (all nodes from one group)]:Intersect|Uniform|Union:_default' \
'--numcores=[Number of cores, as <min>\[-<max>\] (* for no maximum)]:min[-max]:_default' \
'--numnodes=[Number of nodes, as <min>\[-<max>\]]:min[-max]:_default' \
'--numsockets=[Number of sockets, as <min>\[-<max>\]]:min[-max]:_default' \
'--numprocessors=[Number of cores (the older name of /numcores)]:min[-max]:_default' \
'--priority=[Priority\: Lowest, BelowNormal, Normal, AboveNormal, Highest, a number from 0 to 4000, or a name with an offset (Normal+100)]:priority:_default' \
'--progress=[Progress of the job in percent]:percent_progress:_default' \
'--progressmsg=[Progress message of the job]:message:_default' \
'--projectname=[Project of the job]:name:_default' \
'--runtime=[Longest the job may run, as \[\[days\:\]hours\:\]minutes or Infinite]:time|Infinite:_default' \
'--validexitcodes=[Exit codes that count as success for the job'\''s tasks, as <int>|<start>..<end>\[,…\] (default 0)]:int|intStart..intEnd[,…]:_default' \
'--scheduler=[Head node to use\: this machine'\''s embedded head node (\`local\`, the default), or a head node'\''s Unix socket (\`unix\:/path\`). Default\: the CCP_SCHEDULER environment variable, then the config file]:name:_default' \
'-h[Print help]' \
'--help[Print help]' \
':id -- The job'\''s ID:_default' \
&& ret=0
;;
(new)
_arguments "${_arguments_options[@]}" : \
'--askednodes=[Nodes the job may run on, as <node1>\[,<node2>…\]]:node_list:_default' \
'--requestednodes=[Same as /askednodes]:node_list:_default' \
'--corespernode=[Only nodes with this many cores, as <min>\[-<max>\]]:min[-max]:_default' \
'--customproperties=[Custom job properties, as <name>=<value>\[;<name>=<value>…\]]:property_list:_default' \
'--exclusive=[No other job may use the job'\''s nodes]::true|false:_default' \
'--failontaskfailure=[The job fails as soon as one of its tasks fails]::true|false:_default' \
'--holduntil=[Do not start the job before this time (M/d/yyyy h\:mm\:ss AM|PM) or this many minutes from now]:DateTime|minutes:_default' \
'--jobenv=[Environment variables set in every task of the job, as <name>=<value>\[;<name>=<value>…\]]:variable_and_value_list:_default' \
'--jobname=[Name of the job (at most 80 characters)]:job_name:_default' \
'--jobtemplate=[Job template (this head node has the template Default)]:job_template_name:_default' \
'--memorypernode=[Only nodes with this much memory in MB, as <min>\[-<max>\]]:min[-max]:_default' \
'--nodegroup=[Only nodes of these groups, as <group1>\[,<group2>…\]]:node_group_list:_default' \
'--nodegroupop=[How several node groups combine\: Intersect (in all), Union (in any) or Uniform (all nodes from one group)]:Intersect|Uniform|Union:_default' \
'--numcores=[Number of cores, as <min>\[-<max>\] (* for no maximum)]:min[-max]:_default' \
'--numnodes=[Number of nodes, as <min>\[-<max>\]]:min[-max]:_default' \
'--numsockets=[Number of sockets, as <min>\[-<max>\]]:min[-max]:_default' \
'--numprocessors=[Number of cores (the older name of /numcores)]:min[-max]:_default' \
'--priority=[Priority\: Lowest, BelowNormal, Normal, AboveNormal, Highest, a number from 0 to 4000, or a name with an offset (Normal+100)]:priority:_default' \
'--progress=[Progress of the job in percent]:percent_progress:_default' \
'--progressmsg=[Progress message of the job]:message:_default' \
'--projectname=[Project of the job]:name:_default' \
'--runtime=[Longest the job may run, as \[\[days\:\]hours\:\]minutes or Infinite]:time|Infinite:_default' \
'--validexitcodes=[Exit codes that count as success for the job'\''s tasks, as <int>|<start>..<end>\[,…\] (default 0)]:int|intStart..intEnd[,…]:_default' \
'--jobfile=[Takes the job'\''s settings and tasks from an HPC Pack job XML file]:file_name:_default' \
'--scheduler=[Head node to use\: this machine'\''s embedded head node (\`local\`, the default), or a head node'\''s Unix socket (\`unix\:/path\`). Default\: the CCP_SCHEDULER environment variable, then the config file]:name:_default' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(requeue)
_arguments "${_arguments_options[@]}" : \
'--scheduler=[Head node to use\: this machine'\''s embedded head node (\`local\`, the default), or a head node'\''s Unix socket (\`unix\:/path\`). Default\: the CCP_SCHEDULER environment variable, then the config file]:name:_default' \
'-h[Print help]' \
'--help[Print help]' \
':id -- The job'\''s ID:_default' \
&& ret=0
;;
(submit)
_arguments "${_arguments_options[@]}" : \
'(--jobfile)--id=[Submits a job created with job new (and filled with job add)]:jobID:_default' \
'()--jobfile=[Submits the job described by an HPC Pack job XML file]:file_name:_default' \
'--askednodes=[Nodes the job may run on, as <node1>\[,<node2>…\]]:node_list:_default' \
'--requestednodes=[Same as /askednodes]:node_list:_default' \
'--corespernode=[Only nodes with this many cores, as <min>\[-<max>\]]:min[-max]:_default' \
'--customproperties=[Custom job properties, as <name>=<value>\[;<name>=<value>…\]]:property_list:_default' \
'--exclusive=[No other job may use the job'\''s nodes]::true|false:_default' \
'--failontaskfailure=[The job fails as soon as one of its tasks fails]::true|false:_default' \
'--holduntil=[Do not start the job before this time (M/d/yyyy h\:mm\:ss AM|PM) or this many minutes from now]:DateTime|minutes:_default' \
'--jobenv=[Environment variables set in every task of the job, as <name>=<value>\[;<name>=<value>…\]]:variable_and_value_list:_default' \
'--jobname=[Name of the job (at most 80 characters)]:job_name:_default' \
'--jobtemplate=[Job template (this head node has the template Default)]:job_template_name:_default' \
'--memorypernode=[Only nodes with this much memory in MB, as <min>\[-<max>\]]:min[-max]:_default' \
'--nodegroup=[Only nodes of these groups, as <group1>\[,<group2>…\]]:node_group_list:_default' \
'--nodegroupop=[How several node groups combine\: Intersect (in all), Union (in any) or Uniform (all nodes from one group)]:Intersect|Uniform|Union:_default' \
'--numcores=[Number of cores, as <min>\[-<max>\] (* for no maximum)]:min[-max]:_default' \
'--numnodes=[Number of nodes, as <min>\[-<max>\]]:min[-max]:_default' \
'--numsockets=[Number of sockets, as <min>\[-<max>\]]:min[-max]:_default' \
'--numprocessors=[Number of cores (the older name of /numcores)]:min[-max]:_default' \
'--priority=[Priority\: Lowest, BelowNormal, Normal, AboveNormal, Highest, a number from 0 to 4000, or a name with an offset (Normal+100)]:priority:_default' \
'--progress=[Progress of the job in percent]:percent_progress:_default' \
'--progressmsg=[Progress message of the job]:message:_default' \
'--projectname=[Project of the job]:name:_default' \
'--runtime=[Longest the job may run, as \[\[days\:\]hours\:\]minutes or Infinite]:time|Infinite:_default' \
'--validexitcodes=[Exit codes that count as success for the job'\''s tasks, as <int>|<start>..<end>\[,…\] (default 0)]:int|intStart..intEnd[,…]:_default' \
'--name=[Name of the task]:task_name:_default' \
'--env=[Environment variables of the task, as <name>=<value>\[;<name>=<value>…\]]:variable_and_value_list:_default' \
'--stdout=[File the task'\''s standard output goes to (relative to /workdir); without it the head node keeps the output (task view shows it)]:file_name:_default' \
'--stderr=[File the task'\''s standard error goes to]:file_name:_default' \
'--stdin=[File the task reads as standard input]:file_name:_default' \
'--workdir=[Working directory of the task (default\: the owner'\''s home directory)]:folder:_default' \
'--rerunnable=[The task may be run again after a failure of its node]::true|false:_default' \
'--type=[Task type; this head node runs Basic tasks]:type_name:_default' \
'--scheduler=[Head node to use\: this machine'\''s embedded head node (\`local\`, the default), or a head node'\''s Unix socket (\`unix\:/path\`). Default\: the CCP_SCHEDULER environment variable, then the config file]:name:_default' \
'--wait[\[extension\] Waits until the job is Finished, Failed or Canceled and exits 0 only if it Finished; shows the tasks'\'' progress on a terminal]' \
'-h[Print help]' \
'--help[Print help]' \
'*::command -- The command line of the job'\''s one task, passed on as given:_default' \
&& ret=0
;;
(view)
_arguments "${_arguments_options[@]}" : \
'--detailed=[Shows every property of the job]::true|false:_default' \
'--history=[Shows when the job was created, submitted, started and ended]::true|false:_default' \
'--format=[Output format\: list, or json (\[extension\])]:list|json:_default' \
'--scheduler=[Head node to use\: this machine'\''s embedded head node (\`local\`, the default), or a head node'\''s Unix socket (\`unix\:/path\`). Default\: the CCP_SCHEDULER environment variable, then the config file]:name:_default' \
'-h[Print help]' \
'--help[Print help]' \
':id -- The job'\''s ID:_default' \
&& ret=0
;;
(wait)
_arguments "${_arguments_options[@]}" : \
'--timeout=[Gives up after this many seconds (exit code 9); default\: no limit]:seconds:_default' \
'--scheduler=[Head node to use\: this machine'\''s embedded head node (\`local\`, the default), or a head node'\''s Unix socket (\`unix\:/path\`). Default\: the CCP_SCHEDULER environment variable, then the config file]:name:_default' \
'--quiet[Prints nothing; the exit code tells the outcome]' \
'-h[Print help]' \
'--help[Print help]' \
':id -- The job'\''s ID:_default' \
&& ret=0
;;
        esac
    ;;
esac
}

(( $+functions[_job_commands] )) ||
_job_commands() {
    local commands; commands=(
'add:Creates a new task and adds it to the specified job' \
'cancel:Cancels a specified running or pending job' \
'finish:Finishes a specified running job' \
'list:Lists information about the jobs that match the specified criteria' \
'listtasks:Lists information about the tasks that belong to the specified job' \
'modify:Sets the properties of the specified job' \
'new:Creates a new job with the specified settings on an HPC cluster' \
'requeue:Requeues the specified job if the job has a state of Running, Canceled, or Failed' \
'submit:Submits the specified job to run on an HPC cluster' \
'view:Displays information about the specified job' \
'wait:\[extension\] Waits until the specified job is Finished, Failed or Canceled; exits 0 only if it Finished' \
    )
    _describe -t commands 'job commands' commands "$@"
}
(( $+functions[_job__subcmd__add_commands] )) ||
_job__subcmd__add_commands() {
    local commands; commands=()
    _describe -t commands 'job add commands' commands "$@"
}
(( $+functions[_job__subcmd__cancel_commands] )) ||
_job__subcmd__cancel_commands() {
    local commands; commands=()
    _describe -t commands 'job cancel commands' commands "$@"
}
(( $+functions[_job__subcmd__finish_commands] )) ||
_job__subcmd__finish_commands() {
    local commands; commands=()
    _describe -t commands 'job finish commands' commands "$@"
}
(( $+functions[_job__subcmd__list_commands] )) ||
_job__subcmd__list_commands() {
    local commands; commands=()
    _describe -t commands 'job list commands' commands "$@"
}
(( $+functions[_job__subcmd__listtasks_commands] )) ||
_job__subcmd__listtasks_commands() {
    local commands; commands=()
    _describe -t commands 'job listtasks commands' commands "$@"
}
(( $+functions[_job__subcmd__modify_commands] )) ||
_job__subcmd__modify_commands() {
    local commands; commands=()
    _describe -t commands 'job modify commands' commands "$@"
}
(( $+functions[_job__subcmd__new_commands] )) ||
_job__subcmd__new_commands() {
    local commands; commands=()
    _describe -t commands 'job new commands' commands "$@"
}
(( $+functions[_job__subcmd__requeue_commands] )) ||
_job__subcmd__requeue_commands() {
    local commands; commands=()
    _describe -t commands 'job requeue commands' commands "$@"
}
(( $+functions[_job__subcmd__submit_commands] )) ||
_job__subcmd__submit_commands() {
    local commands; commands=()
    _describe -t commands 'job submit commands' commands "$@"
}
(( $+functions[_job__subcmd__view_commands] )) ||
_job__subcmd__view_commands() {
    local commands; commands=()
    _describe -t commands 'job view commands' commands "$@"
}
(( $+functions[_job__subcmd__wait_commands] )) ||
_job__subcmd__wait_commands() {
    local commands; commands=()
    _describe -t commands 'job wait commands' commands "$@"
}

if [ "$funcstack[1]" = "_job" ]; then
    _job "$@"
else
    compdef _job job
fi
