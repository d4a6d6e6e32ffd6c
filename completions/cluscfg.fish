# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_cluscfg_global_optspecs
    string join \n h/help
end

function __fish_cluscfg_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_cluscfg_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_cluscfg_using_subcommand
    set -l cmd (__fish_cluscfg_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c cluscfg -n "__fish_cluscfg_needs_command" -s h -l help -d 'Print help'
complete -c cluscfg -n "__fish_cluscfg_needs_command" -f -a "listenvs" -d 'Displays the values of the cluster-wide environment variables'
complete -c cluscfg -n "__fish_cluscfg_needs_command" -f -a "setenvs" -d 'Sets cluster-wide environment variables; <name>= with no value unsets one'
complete -c cluscfg -n "__fish_cluscfg_needs_command" -f -a "view" -d 'Displays a summary of the cluster'
complete -c cluscfg -n "__fish_cluscfg_using_subcommand listenvs" -l scheduler -d 'Head node to use: this machine\'s embedded head node (`local`, the default), or a head node\'s Unix socket (`unix:/path`). Default: the CCP_SCHEDULER environment variable, then the config file' -r
complete -c cluscfg -n "__fish_cluscfg_using_subcommand listenvs" -s h -l help -d 'Print help'
complete -c cluscfg -n "__fish_cluscfg_using_subcommand setenvs" -l scheduler -d 'Head node to use: this machine\'s embedded head node (`local`, the default), or a head node\'s Unix socket (`unix:/path`). Default: the CCP_SCHEDULER environment variable, then the config file' -r
complete -c cluscfg -n "__fish_cluscfg_using_subcommand setenvs" -s h -l help -d 'Print help'
complete -c cluscfg -n "__fish_cluscfg_using_subcommand view" -l format -d 'Output format: list, or json ([extension])' -r
complete -c cluscfg -n "__fish_cluscfg_using_subcommand view" -l scheduler -d 'Head node to use: this machine\'s embedded head node (`local`, the default), or a head node\'s Unix socket (`unix:/path`). Default: the CCP_SCHEDULER environment variable, then the config file' -r
complete -c cluscfg -n "__fish_cluscfg_using_subcommand view" -s h -l help -d 'Print help'
