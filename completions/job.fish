# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_job_global_optspecs
    string join \n h/help
end

function __fish_job_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_job_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_job_using_subcommand
    set -l cmd (__fish_job_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c job -n "__fish_job_needs_command" -s h -l help -d 'Print help'
complete -c job -n "__fish_job_needs_command" -f -a "add" -d 'Creates a new task and adds it to the specified job'
complete -c job -n "__fish_job_needs_command" -f -a "cancel" -d 'Cancels a specified running or pending job'
complete -c job -n "__fish_job_needs_command" -f -a "finish" -d 'Finishes a specified running job'
complete -c job -n "__fish_job_needs_command" -f -a "list" -d 'Lists information about the jobs that match the specified criteria'
complete -c job -n "__fish_job_needs_command" -f -a "listtasks" -d 'Lists information about the tasks that belong to the specified job'
complete -c job -n "__fish_job_needs_command" -f -a "modify" -d 'Sets the properties of the specified job'
complete -c job -n "__fish_job_needs_command" -f -a "new" -d 'Creates a new job with the specified settings on an HPC cluster'
complete -c job -n "__fish_job_needs_command" -f -a "requeue" -d 'Requeues the specified job if the job has a state of Running, Canceled, or Failed'
complete -c job -n "__fish_job_needs_command" -f -a "submit" -d 'Submits the specified job to run on an HPC cluster'
complete -c job -n "__fish_job_needs_command" -f -a "view" -d 'Displays information about the specified job'
complete -c job -n "__fish_job_needs_command" -f -a "wait" -d '[extension] Waits until the specified job is Finished, Failed or Canceled; exits 0 only if it Finished'
complete -c job -n "__fish_job_using_subcommand add" -l depend -d 'Names of tasks of this job that must finish before this one starts, as <task_name1>[,<task_name2>…]' -r
complete -c job -n "__fish_job_using_subcommand add" -l exclusive -d 'No other task may run on this task\'s nodes' -r
complete -c job -n "__fish_job_using_subcommand add" -l numcores -d 'Number of cores, as <min>[-<max>] (* for no maximum)' -r
complete -c job -n "__fish_job_using_subcommand add" -l numnodes -d 'Number of nodes, as <min>[-<max>]' -r
complete -c job -n "__fish_job_using_subcommand add" -l numsockets -d 'Number of sockets, as <min>[-<max>]' -r
complete -c job -n "__fish_job_using_subcommand add" -l numprocessors -d 'Number of cores (the older name of /numcores)' -r
complete -c job -n "__fish_job_using_subcommand add" -l requirednodes -d 'Nodes the task must run on (among the job\'s), as <node1>[,<node2>…]' -r
complete -c job -n "__fish_job_using_subcommand add" -l runtime -d 'Longest the task may run, as [[days:]hours:]minutes or Infinite' -r
complete -c job -n "__fish_job_using_subcommand add" -l validexitcodes -d 'Exit codes that count as success, as <int>|<start>..<end>[,…] (default 0)' -r
complete -c job -n "__fish_job_using_subcommand add" -l name -d 'Name of the task' -r
complete -c job -n "__fish_job_using_subcommand add" -l env -d 'Environment variables of the task, as <name>=<value>[;<name>=<value>…]' -r
complete -c job -n "__fish_job_using_subcommand add" -l stdout -d 'File the task\'s standard output goes to (relative to /workdir); without it the head node keeps the output (task view shows it)' -r
complete -c job -n "__fish_job_using_subcommand add" -l stderr -d 'File the task\'s standard error goes to' -r
complete -c job -n "__fish_job_using_subcommand add" -l stdin -d 'File the task reads as standard input' -r
complete -c job -n "__fish_job_using_subcommand add" -l workdir -d 'Working directory of the task (default: the owner\'s home directory)' -r
complete -c job -n "__fish_job_using_subcommand add" -l rerunnable -d 'The task may be run again after a failure of its node' -r
complete -c job -n "__fish_job_using_subcommand add" -l type -d 'Task type; this head node runs Basic tasks' -r
complete -c job -n "__fish_job_using_subcommand add" -l scheduler -d 'Head node to use: this machine\'s embedded head node (`local`, the default), or a head node\'s Unix socket (`unix:/path`). Default: the CCP_SCHEDULER environment variable, then the config file' -r
complete -c job -n "__fish_job_using_subcommand add" -s h -l help -d 'Print help'
complete -c job -n "__fish_job_using_subcommand cancel" -l message -d 'Why, recorded as the job\'s error message' -r
complete -c job -n "__fish_job_using_subcommand cancel" -l scheduler -d 'Head node to use: this machine\'s embedded head node (`local`, the default), or a head node\'s Unix socket (`unix:/path`). Default: the CCP_SCHEDULER environment variable, then the config file' -r
complete -c job -n "__fish_job_using_subcommand cancel" -s h -l help -d 'Print help'
complete -c job -n "__fish_job_using_subcommand finish" -l message -d 'Why, recorded as the job\'s error message' -r
complete -c job -n "__fish_job_using_subcommand finish" -l scheduler -d 'Head node to use: this machine\'s embedded head node (`local`, the default), or a head node\'s Unix socket (`unix:/path`). Default: the CCP_SCHEDULER environment variable, then the config file' -r
complete -c job -n "__fish_job_using_subcommand finish" -s h -l help -d 'Print help'
complete -c job -n "__fish_job_using_subcommand list" -l format -d 'Output format: table (default), list, or json ([extension])' -r
complete -c job -n "__fish_job_using_subcommand list" -l jobname -d 'Only jobs with this name, or names starting with a prefix followed by *' -r
complete -c job -n "__fish_job_using_subcommand list" -l jobtemplate -d 'Only jobs of this template' -r
complete -c job -n "__fish_job_using_subcommand list" -l project -d 'Only jobs of this project' -r
complete -c job -n "__fish_job_using_subcommand list" -l state -d 'Only jobs in these states, as <state1>[,<state2>…] or All' -r
complete -c job -n "__fish_job_using_subcommand list" -l status -d 'Same as /state' -r
complete -c job -n "__fish_job_using_subcommand list" -l submittime -d 'Only jobs submitted in the last N days' -r
complete -c job -n "__fish_job_using_subcommand list" -l user -d 'Only jobs of this user, or * for every user' -r
complete -c job -n "__fish_job_using_subcommand list" -l scheduler -d 'Head node to use: this machine\'s embedded head node (`local`, the default), or a head node\'s Unix socket (`unix:/path`). Default: the CCP_SCHEDULER environment variable, then the config file' -r
complete -c job -n "__fish_job_using_subcommand list" -l all -d 'Lists all jobs; without it, only your Queued and Running jobs unless /state or /user says otherwise'
complete -c job -n "__fish_job_using_subcommand list" -s h -l help -d 'Print help'
complete -c job -n "__fish_job_using_subcommand listtasks" -l format -d 'Output format: list (default), table, or json ([extension])' -r
complete -c job -n "__fish_job_using_subcommand listtasks" -l state -d 'Only tasks in these states, as <state1>[,<state2>…] or All' -r
complete -c job -n "__fish_job_using_subcommand listtasks" -l status -d 'Same as /state' -r
complete -c job -n "__fish_job_using_subcommand listtasks" -l scheduler -d 'Head node to use: this machine\'s embedded head node (`local`, the default), or a head node\'s Unix socket (`unix:/path`). Default: the CCP_SCHEDULER environment variable, then the config file' -r
complete -c job -n "__fish_job_using_subcommand listtasks" -l expand -d 'Lists each subtask of parametric tasks (there are none here)'
complete -c job -n "__fish_job_using_subcommand listtasks" -s h -l help -d 'Print help'
complete -c job -n "__fish_job_using_subcommand modify" -l askednodes -d 'Nodes the job may run on, as <node1>[,<node2>…]' -r
complete -c job -n "__fish_job_using_subcommand modify" -l requestednodes -d 'Same as /askednodes' -r
complete -c job -n "__fish_job_using_subcommand modify" -l corespernode -d 'Only nodes with this many cores, as <min>[-<max>]' -r
complete -c job -n "__fish_job_using_subcommand modify" -l customproperties -d 'Custom job properties, as <name>=<value>[;<name>=<value>…]' -r
complete -c job -n "__fish_job_using_subcommand modify" -l exclusive -d 'No other job may use the job\'s nodes' -r
complete -c job -n "__fish_job_using_subcommand modify" -l failontaskfailure -d 'The job fails as soon as one of its tasks fails' -r
complete -c job -n "__fish_job_using_subcommand modify" -l holduntil -d 'Do not start the job before this time (M/d/yyyy h:mm:ss AM|PM) or this many minutes from now' -r
complete -c job -n "__fish_job_using_subcommand modify" -l jobenv -d 'Environment variables set in every task of the job, as <name>=<value>[;<name>=<value>…]' -r
complete -c job -n "__fish_job_using_subcommand modify" -l jobname -d 'Name of the job (at most 80 characters)' -r
complete -c job -n "__fish_job_using_subcommand modify" -l jobtemplate -d 'Job template (this head node has the template Default)' -r
complete -c job -n "__fish_job_using_subcommand modify" -l memorypernode -d 'Only nodes with this much memory in MB, as <min>[-<max>]' -r
complete -c job -n "__fish_job_using_subcommand modify" -l nodegroup -d 'Only nodes of these groups, as <group1>[,<group2>…]' -r
complete -c job -n "__fish_job_using_subcommand modify" -l nodegroupop -d 'How several node groups combine: Intersect (in all), Union (in any) or Uniform (all nodes from one group)' -r
complete -c job -n "__fish_job_using_subcommand modify" -l numcores -d 'Number of cores, as <min>[-<max>] (* for no maximum)' -r
complete -c job -n "__fish_job_using_subcommand modify" -l numnodes -d 'Number of nodes, as <min>[-<max>]' -r
complete -c job -n "__fish_job_using_subcommand modify" -l numsockets -d 'Number of sockets, as <min>[-<max>]' -r
complete -c job -n "__fish_job_using_subcommand modify" -l numprocessors -d 'Number of cores (the older name of /numcores)' -r
complete -c job -n "__fish_job_using_subcommand modify" -l priority -d 'Priority: Lowest, BelowNormal, Normal, AboveNormal, Highest, a number from 0 to 4000, or a name with an offset (Normal+100)' -r
complete -c job -n "__fish_job_using_subcommand modify" -l progress -d 'Progress of the job in percent' -r
complete -c job -n "__fish_job_using_subcommand modify" -l progressmsg -d 'Progress message of the job' -r
complete -c job -n "__fish_job_using_subcommand modify" -l projectname -d 'Project of the job' -r
complete -c job -n "__fish_job_using_subcommand modify" -l runtime -d 'Longest the job may run, as [[days:]hours:]minutes or Infinite' -r
complete -c job -n "__fish_job_using_subcommand modify" -l validexitcodes -d 'Exit codes that count as success for the job\'s tasks, as <int>|<start>..<end>[,…] (default 0)' -r
complete -c job -n "__fish_job_using_subcommand modify" -l scheduler -d 'Head node to use: this machine\'s embedded head node (`local`, the default), or a head node\'s Unix socket (`unix:/path`). Default: the CCP_SCHEDULER environment variable, then the config file' -r
complete -c job -n "__fish_job_using_subcommand modify" -s h -l help -d 'Print help'
complete -c job -n "__fish_job_using_subcommand new" -l askednodes -d 'Nodes the job may run on, as <node1>[,<node2>…]' -r
complete -c job -n "__fish_job_using_subcommand new" -l requestednodes -d 'Same as /askednodes' -r
complete -c job -n "__fish_job_using_subcommand new" -l corespernode -d 'Only nodes with this many cores, as <min>[-<max>]' -r
complete -c job -n "__fish_job_using_subcommand new" -l customproperties -d 'Custom job properties, as <name>=<value>[;<name>=<value>…]' -r
complete -c job -n "__fish_job_using_subcommand new" -l exclusive -d 'No other job may use the job\'s nodes' -r
complete -c job -n "__fish_job_using_subcommand new" -l failontaskfailure -d 'The job fails as soon as one of its tasks fails' -r
complete -c job -n "__fish_job_using_subcommand new" -l holduntil -d 'Do not start the job before this time (M/d/yyyy h:mm:ss AM|PM) or this many minutes from now' -r
complete -c job -n "__fish_job_using_subcommand new" -l jobenv -d 'Environment variables set in every task of the job, as <name>=<value>[;<name>=<value>…]' -r
complete -c job -n "__fish_job_using_subcommand new" -l jobname -d 'Name of the job (at most 80 characters)' -r
complete -c job -n "__fish_job_using_subcommand new" -l jobtemplate -d 'Job template (this head node has the template Default)' -r
complete -c job -n "__fish_job_using_subcommand new" -l memorypernode -d 'Only nodes with this much memory in MB, as <min>[-<max>]' -r
complete -c job -n "__fish_job_using_subcommand new" -l nodegroup -d 'Only nodes of these groups, as <group1>[,<group2>…]' -r
complete -c job -n "__fish_job_using_subcommand new" -l nodegroupop -d 'How several node groups combine: Intersect (in all), Union (in any) or Uniform (all nodes from one group)' -r
complete -c job -n "__fish_job_using_subcommand new" -l numcores -d 'Number of cores, as <min>[-<max>] (* for no maximum)' -r
complete -c job -n "__fish_job_using_subcommand new" -l numnodes -d 'Number of nodes, as <min>[-<max>]' -r
complete -c job -n "__fish_job_using_subcommand new" -l numsockets -d 'Number of sockets, as <min>[-<max>]' -r
complete -c job -n "__fish_job_using_subcommand new" -l numprocessors -d 'Number of cores (the older name of /numcores)' -r
complete -c job -n "__fish_job_using_subcommand new" -l priority -d 'Priority: Lowest, BelowNormal, Normal, AboveNormal, Highest, a number from 0 to 4000, or a name with an offset (Normal+100)' -r
complete -c job -n "__fish_job_using_subcommand new" -l progress -d 'Progress of the job in percent' -r
complete -c job -n "__fish_job_using_subcommand new" -l progressmsg -d 'Progress message of the job' -r
complete -c job -n "__fish_job_using_subcommand new" -l projectname -d 'Project of the job' -r
complete -c job -n "__fish_job_using_subcommand new" -l runtime -d 'Longest the job may run, as [[days:]hours:]minutes or Infinite' -r
complete -c job -n "__fish_job_using_subcommand new" -l validexitcodes -d 'Exit codes that count as success for the job\'s tasks, as <int>|<start>..<end>[,…] (default 0)' -r
complete -c job -n "__fish_job_using_subcommand new" -l jobfile -d 'Takes the job\'s settings and tasks from an HPC Pack job XML file' -r
complete -c job -n "__fish_job_using_subcommand new" -l scheduler -d 'Head node to use: this machine\'s embedded head node (`local`, the default), or a head node\'s Unix socket (`unix:/path`). Default: the CCP_SCHEDULER environment variable, then the config file' -r
complete -c job -n "__fish_job_using_subcommand new" -s h -l help -d 'Print help'
complete -c job -n "__fish_job_using_subcommand requeue" -l scheduler -d 'Head node to use: this machine\'s embedded head node (`local`, the default), or a head node\'s Unix socket (`unix:/path`). Default: the CCP_SCHEDULER environment variable, then the config file' -r
complete -c job -n "__fish_job_using_subcommand requeue" -s h -l help -d 'Print help'
complete -c job -n "__fish_job_using_subcommand submit" -l id -d 'Submits a job created with job new (and filled with job add)' -r
complete -c job -n "__fish_job_using_subcommand submit" -l jobfile -d 'Submits the job described by an HPC Pack job XML file' -r
complete -c job -n "__fish_job_using_subcommand submit" -l askednodes -d 'Nodes the job may run on, as <node1>[,<node2>…]' -r
complete -c job -n "__fish_job_using_subcommand submit" -l requestednodes -d 'Same as /askednodes' -r
complete -c job -n "__fish_job_using_subcommand submit" -l corespernode -d 'Only nodes with this many cores, as <min>[-<max>]' -r
complete -c job -n "__fish_job_using_subcommand submit" -l customproperties -d 'Custom job properties, as <name>=<value>[;<name>=<value>…]' -r
complete -c job -n "__fish_job_using_subcommand submit" -l exclusive -d 'No other job may use the job\'s nodes' -r
complete -c job -n "__fish_job_using_subcommand submit" -l failontaskfailure -d 'The job fails as soon as one of its tasks fails' -r
complete -c job -n "__fish_job_using_subcommand submit" -l holduntil -d 'Do not start the job before this time (M/d/yyyy h:mm:ss AM|PM) or this many minutes from now' -r
complete -c job -n "__fish_job_using_subcommand submit" -l jobenv -d 'Environment variables set in every task of the job, as <name>=<value>[;<name>=<value>…]' -r
complete -c job -n "__fish_job_using_subcommand submit" -l jobname -d 'Name of the job (at most 80 characters)' -r
complete -c job -n "__fish_job_using_subcommand submit" -l jobtemplate -d 'Job template (this head node has the template Default)' -r
complete -c job -n "__fish_job_using_subcommand submit" -l memorypernode -d 'Only nodes with this much memory in MB, as <min>[-<max>]' -r
complete -c job -n "__fish_job_using_subcommand submit" -l nodegroup -d 'Only nodes of these groups, as <group1>[,<group2>…]' -r
complete -c job -n "__fish_job_using_subcommand submit" -l nodegroupop -d 'How several node groups combine: Intersect (in all), Union (in any) or Uniform (all nodes from one group)' -r
complete -c job -n "__fish_job_using_subcommand submit" -l numcores -d 'Number of cores, as <min>[-<max>] (* for no maximum)' -r
complete -c job -n "__fish_job_using_subcommand submit" -l numnodes -d 'Number of nodes, as <min>[-<max>]' -r
complete -c job -n "__fish_job_using_subcommand submit" -l numsockets -d 'Number of sockets, as <min>[-<max>]' -r
complete -c job -n "__fish_job_using_subcommand submit" -l numprocessors -d 'Number of cores (the older name of /numcores)' -r
complete -c job -n "__fish_job_using_subcommand submit" -l priority -d 'Priority: Lowest, BelowNormal, Normal, AboveNormal, Highest, a number from 0 to 4000, or a name with an offset (Normal+100)' -r
complete -c job -n "__fish_job_using_subcommand submit" -l progress -d 'Progress of the job in percent' -r
complete -c job -n "__fish_job_using_subcommand submit" -l progressmsg -d 'Progress message of the job' -r
complete -c job -n "__fish_job_using_subcommand submit" -l projectname -d 'Project of the job' -r
complete -c job -n "__fish_job_using_subcommand submit" -l runtime -d 'Longest the job may run, as [[days:]hours:]minutes or Infinite' -r
complete -c job -n "__fish_job_using_subcommand submit" -l validexitcodes -d 'Exit codes that count as success for the job\'s tasks, as <int>|<start>..<end>[,…] (default 0)' -r
complete -c job -n "__fish_job_using_subcommand submit" -l name -d 'Name of the task' -r
complete -c job -n "__fish_job_using_subcommand submit" -l env -d 'Environment variables of the task, as <name>=<value>[;<name>=<value>…]' -r
complete -c job -n "__fish_job_using_subcommand submit" -l stdout -d 'File the task\'s standard output goes to (relative to /workdir); without it the head node keeps the output (task view shows it)' -r
complete -c job -n "__fish_job_using_subcommand submit" -l stderr -d 'File the task\'s standard error goes to' -r
complete -c job -n "__fish_job_using_subcommand submit" -l stdin -d 'File the task reads as standard input' -r
complete -c job -n "__fish_job_using_subcommand submit" -l workdir -d 'Working directory of the task (default: the owner\'s home directory)' -r
complete -c job -n "__fish_job_using_subcommand submit" -l rerunnable -d 'The task may be run again after a failure of its node' -r
complete -c job -n "__fish_job_using_subcommand submit" -l type -d 'Task type; this head node runs Basic tasks' -r
complete -c job -n "__fish_job_using_subcommand submit" -l scheduler -d 'Head node to use: this machine\'s embedded head node (`local`, the default), or a head node\'s Unix socket (`unix:/path`). Default: the CCP_SCHEDULER environment variable, then the config file' -r
complete -c job -n "__fish_job_using_subcommand submit" -l wait -d '[extension] Waits until the job is Finished, Failed or Canceled and exits 0 only if it Finished; shows the tasks\' progress on a terminal'
complete -c job -n "__fish_job_using_subcommand submit" -s h -l help -d 'Print help'
complete -c job -n "__fish_job_using_subcommand view" -l detailed -d 'Shows every property of the job' -r
complete -c job -n "__fish_job_using_subcommand view" -l history -d 'Shows when the job was created, submitted, started and ended' -r
complete -c job -n "__fish_job_using_subcommand view" -l format -d 'Output format: list, or json ([extension])' -r
complete -c job -n "__fish_job_using_subcommand view" -l scheduler -d 'Head node to use: this machine\'s embedded head node (`local`, the default), or a head node\'s Unix socket (`unix:/path`). Default: the CCP_SCHEDULER environment variable, then the config file' -r
complete -c job -n "__fish_job_using_subcommand view" -s h -l help -d 'Print help'
complete -c job -n "__fish_job_using_subcommand wait" -l timeout -d 'Gives up after this many seconds (exit code 9); default: no limit' -r
complete -c job -n "__fish_job_using_subcommand wait" -l scheduler -d 'Head node to use: this machine\'s embedded head node (`local`, the default), or a head node\'s Unix socket (`unix:/path`). Default: the CCP_SCHEDULER environment variable, then the config file' -r
complete -c job -n "__fish_job_using_subcommand wait" -l quiet -d 'Prints nothing; the exit code tells the outcome'
complete -c job -n "__fish_job_using_subcommand wait" -s h -l help -d 'Print help'
