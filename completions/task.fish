# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_task_global_optspecs
    string join \n h/help
end

function __fish_task_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_task_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_task_using_subcommand
    set -l cmd (__fish_task_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c task -n "__fish_task_needs_command" -s h -l help -d 'Print help'
complete -c task -n "__fish_task_needs_command" -f -a "cancel" -d 'Cancels the specified task and releases its resources'
complete -c task -n "__fish_task_needs_command" -f -a "finish" -d 'Finishes a running or queued task'
complete -c task -n "__fish_task_needs_command" -f -a "requeue" -d 'Requeues the specified task'
complete -c task -n "__fish_task_needs_command" -f -a "view" -d 'Displays information about the specified task'
complete -c task -n "__fish_task_using_subcommand cancel" -l message -d 'Why, recorded as the task\'s error message' -r
complete -c task -n "__fish_task_using_subcommand cancel" -l scheduler -d 'Head node to use: this machine\'s embedded head node (`local`, the default), or a head node\'s Unix socket (`unix:/path`). Default: the CCP_SCHEDULER environment variable, then the config file' -r
complete -c task -n "__fish_task_using_subcommand cancel" -s h -l help -d 'Print help'
complete -c task -n "__fish_task_using_subcommand finish" -l message -d 'Why, recorded as the task\'s error message' -r
complete -c task -n "__fish_task_using_subcommand finish" -l scheduler -d 'Head node to use: this machine\'s embedded head node (`local`, the default), or a head node\'s Unix socket (`unix:/path`). Default: the CCP_SCHEDULER environment variable, then the config file' -r
complete -c task -n "__fish_task_using_subcommand finish" -s h -l help -d 'Print help'
complete -c task -n "__fish_task_using_subcommand requeue" -l scheduler -d 'Head node to use: this machine\'s embedded head node (`local`, the default), or a head node\'s Unix socket (`unix:/path`). Default: the CCP_SCHEDULER environment variable, then the config file' -r
complete -c task -n "__fish_task_using_subcommand requeue" -s h -l help -d 'Print help'
complete -c task -n "__fish_task_using_subcommand view" -l detailed -d 'Shows every property of the task' -r
complete -c task -n "__fish_task_using_subcommand view" -l format -d 'Output format: list, or json ([extension])' -r
complete -c task -n "__fish_task_using_subcommand view" -l scheduler -d 'Head node to use: this machine\'s embedded head node (`local`, the default), or a head node\'s Unix socket (`unix:/path`). Default: the CCP_SCHEDULER environment variable, then the config file' -r
complete -c task -n "__fish_task_using_subcommand view" -s h -l help -d 'Print help'
