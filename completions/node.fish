# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_node_global_optspecs
    string join \n h/help
end

function __fish_node_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_node_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_node_using_subcommand
    set -l cmd (__fish_node_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c node -n "__fish_node_needs_command" -s h -l help -d 'Print help'
complete -c node -n "__fish_node_needs_command" -f -a "list" -d 'Displays information about the nodes in the HPC cluster'
complete -c node -n "__fish_node_needs_command" -f -a "listcores" -d 'Displays a list of the cores on the nodes in the HPC cluster'
complete -c node -n "__fish_node_needs_command" -f -a "offline" -d 'Takes the specified node or all nodes offline (draining first unless /force)'
complete -c node -n "__fish_node_needs_command" -f -a "online" -d 'Brings the specified node or all nodes online'
complete -c node -n "__fish_node_needs_command" -f -a "view" -d 'Displays the property values of a node'
complete -c node -n "__fish_node_using_subcommand list" -l format -d 'Output format: table (default), list, or json ([extension])' -r
complete -c node -n "__fish_node_using_subcommand list" -l group -d 'Only nodes of this group' -r
complete -c node -n "__fish_node_using_subcommand list" -l state -d 'Only nodes in this state (Online, Offline, Draining)' -r
complete -c node -n "__fish_node_using_subcommand list" -l scheduler -d 'Head node to use: this machine\'s embedded head node (`local`, the default), or a head node\'s Unix socket (`unix:/path`). Default: the CCP_SCHEDULER environment variable, then the config file' -r
complete -c node -n "__fish_node_using_subcommand list" -l activeheadnode -d 'Shows the name of the active head node only'
complete -c node -n "__fish_node_using_subcommand list" -s h -l help -d 'Print help'
complete -c node -n "__fish_node_using_subcommand listcores" -l format -d 'Output format: table (default), list, or json ([extension])' -r
complete -c node -n "__fish_node_using_subcommand listcores" -l jobid -d 'Only the cores allocated to this job' -r
complete -c node -n "__fish_node_using_subcommand listcores" -l state -d 'Only cores in these states: all, offline, idle, jobscheduled, taskrunning, readyfortask, taskscheduled (comma-separated; * means all)' -r
complete -c node -n "__fish_node_using_subcommand listcores" -l scheduler -d 'Head node to use: this machine\'s embedded head node (`local`, the default), or a head node\'s Unix socket (`unix:/path`). Default: the CCP_SCHEDULER environment variable, then the config file' -r
complete -c node -n "__fish_node_using_subcommand listcores" -s h -l help -d 'Print help'
complete -c node -n "__fish_node_using_subcommand offline" -l scheduler -d 'Head node to use: this machine\'s embedded head node (`local`, the default), or a head node\'s Unix socket (`unix:/path`). Default: the CCP_SCHEDULER environment variable, then the config file' -r
complete -c node -n "__fish_node_using_subcommand offline" -l all -d 'Every node that is online'
complete -c node -n "__fish_node_using_subcommand offline" -l force -d 'Goes offline at once, canceling the jobs on the node, instead of draining (letting them finish) first'
complete -c node -n "__fish_node_using_subcommand offline" -s h -l help -d 'Print help'
complete -c node -n "__fish_node_using_subcommand online" -l scheduler -d 'Head node to use: this machine\'s embedded head node (`local`, the default), or a head node\'s Unix socket (`unix:/path`). Default: the CCP_SCHEDULER environment variable, then the config file' -r
complete -c node -n "__fish_node_using_subcommand online" -l all -d 'Every node that is not online'
complete -c node -n "__fish_node_using_subcommand online" -s h -l help -d 'Print help'
complete -c node -n "__fish_node_using_subcommand view" -l detailed -d 'Shows every property of the node' -r
complete -c node -n "__fish_node_using_subcommand view" -l format -d 'Output format: list, or json ([extension])' -r
complete -c node -n "__fish_node_using_subcommand view" -l scheduler -d 'Head node to use: this machine\'s embedded head node (`local`, the default), or a head node\'s Unix socket (`unix:/path`). Default: the CCP_SCHEDULER environment variable, then the config file' -r
complete -c node -n "__fish_node_using_subcommand view" -s h -l help -d 'Print help'
