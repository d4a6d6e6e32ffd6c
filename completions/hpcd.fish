# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_hpcd_global_optspecs
    string join \n h/help V/version
end

function __fish_hpcd_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_hpcd_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_hpcd_using_subcommand
    set -l cmd (__fish_hpcd_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c hpcd -n "__fish_hpcd_needs_command" -s h -l help -d 'Print help'
complete -c hpcd -n "__fish_hpcd_needs_command" -s V -l version -d 'Print version'
complete -c hpcd -n "__fish_hpcd_needs_command" -f -a "head" -d 'Runs a head node in the foreground, with this machine as its compute node(s)'
complete -c hpcd -n "__fish_hpcd_needs_command" -f -a "local" -d 'Starts, stops or reports the embedded head node of this user (the one the CLIs start by themselves)'
complete -c hpcd -n "__fish_hpcd_needs_command" -f -a "status" -d 'Reports the embedded head node\'s status (same as `hpcd local status`)'
complete -c hpcd -n "__fish_hpcd_needs_command" -f -a "run-task" -d 'Supervises one task run (started by the node agent; not for users)'
complete -c hpcd -n "__fish_hpcd_needs_command" -f -a "run-rank" -d 'Supervises one MPI rank (started by the launch service with the request on stdin and mpiexec\'s connection as descriptor 3; not for users)'
complete -c hpcd -n "__fish_hpcd_needs_command" -f -a "slurm-job" -d 'Runs the tasks of a job the Slurm backend submitted, as its batch script (not for users)'
complete -c hpcd -n "__fish_hpcd_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hpcd -n "__fish_hpcd_using_subcommand head" -l state-dir -d 'Directory of the state database and task output (default: the embedded head node\'s)' -r -F
complete -c hpcd -n "__fish_hpcd_using_subcommand head" -l socket -d 'Unix socket to listen on (default: hpcd.sock in the state directory)' -r -F
complete -c hpcd -n "__fish_hpcd_using_subcommand head" -l nodes -d 'Splits this machine into N virtual nodes (default from the config file, else 1)' -r
complete -c hpcd -n "__fish_hpcd_using_subcommand head" -l cores-per-node -d 'Cores of each virtual node (default: the CPUs divided evenly)' -r
complete -c hpcd -n "__fish_hpcd_using_subcommand head" -l node-group -d 'A node group of the virtual nodes: NAME (every node), NAME:COUNT (the next COUNT nodes) or NAME:FIRST-LAST (those nodes, numbered from 1); repeat for more' -r
complete -c hpcd -n "__fish_hpcd_using_subcommand head" -l shared -d 'Lets every local user connect (they are told apart by their credentials; only owners change their jobs)'
complete -c hpcd -n "__fish_hpcd_using_subcommand head" -l quiet -d 'Prints nothing when all goes well'
complete -c hpcd -n "__fish_hpcd_using_subcommand head" -s h -l help -d 'Print help'
complete -c hpcd -n "__fish_hpcd_using_subcommand local; and not __fish_seen_subcommand_from start stop status help" -s h -l help -d 'Print help'
complete -c hpcd -n "__fish_hpcd_using_subcommand local; and not __fish_seen_subcommand_from start stop status help" -f -a "start" -d 'Starts the embedded head node in the background, unless it runs already'
complete -c hpcd -n "__fish_hpcd_using_subcommand local; and not __fish_seen_subcommand_from start stop status help" -f -a "stop" -d 'Stops the embedded head node. Running tasks go on; it finds them again when it starts'
complete -c hpcd -n "__fish_hpcd_using_subcommand local; and not __fish_seen_subcommand_from start stop status help" -f -a "status" -d 'Reports whether the embedded head node runs, and its nodes and jobs'
complete -c hpcd -n "__fish_hpcd_using_subcommand local; and not __fish_seen_subcommand_from start stop status help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hpcd -n "__fish_hpcd_using_subcommand local; and __fish_seen_subcommand_from start" -l nodes -d 'Splits this machine into N virtual nodes (default from the config file, else 1)' -r
complete -c hpcd -n "__fish_hpcd_using_subcommand local; and __fish_seen_subcommand_from start" -l cores-per-node -d 'Cores of each virtual node (default: the CPUs divided evenly)' -r
complete -c hpcd -n "__fish_hpcd_using_subcommand local; and __fish_seen_subcommand_from start" -l node-group -d 'A node group of the virtual nodes: NAME (every node), NAME:COUNT (the next COUNT nodes) or NAME:FIRST-LAST (those nodes, numbered from 1); repeat for more' -r
complete -c hpcd -n "__fish_hpcd_using_subcommand local; and __fish_seen_subcommand_from start" -l quiet -d 'Prints nothing when all goes well'
complete -c hpcd -n "__fish_hpcd_using_subcommand local; and __fish_seen_subcommand_from start" -s h -l help -d 'Print help'
complete -c hpcd -n "__fish_hpcd_using_subcommand local; and __fish_seen_subcommand_from stop" -s h -l help -d 'Print help'
complete -c hpcd -n "__fish_hpcd_using_subcommand local; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help'
complete -c hpcd -n "__fish_hpcd_using_subcommand local; and __fish_seen_subcommand_from help" -f -a "start" -d 'Starts the embedded head node in the background, unless it runs already'
complete -c hpcd -n "__fish_hpcd_using_subcommand local; and __fish_seen_subcommand_from help" -f -a "stop" -d 'Stops the embedded head node. Running tasks go on; it finds them again when it starts'
complete -c hpcd -n "__fish_hpcd_using_subcommand local; and __fish_seen_subcommand_from help" -f -a "status" -d 'Reports whether the embedded head node runs, and its nodes and jobs'
complete -c hpcd -n "__fish_hpcd_using_subcommand local; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hpcd -n "__fish_hpcd_using_subcommand status" -s h -l help -d 'Print help'
complete -c hpcd -n "__fish_hpcd_using_subcommand run-task" -s h -l help -d 'Print help'
complete -c hpcd -n "__fish_hpcd_using_subcommand run-rank" -s h -l help -d 'Print help'
complete -c hpcd -n "__fish_hpcd_using_subcommand slurm-job" -s h -l help -d 'Print help'
complete -c hpcd -n "__fish_hpcd_using_subcommand help; and not __fish_seen_subcommand_from head local status run-task run-rank slurm-job help" -f -a "head" -d 'Runs a head node in the foreground, with this machine as its compute node(s)'
complete -c hpcd -n "__fish_hpcd_using_subcommand help; and not __fish_seen_subcommand_from head local status run-task run-rank slurm-job help" -f -a "local" -d 'Starts, stops or reports the embedded head node of this user (the one the CLIs start by themselves)'
complete -c hpcd -n "__fish_hpcd_using_subcommand help; and not __fish_seen_subcommand_from head local status run-task run-rank slurm-job help" -f -a "status" -d 'Reports the embedded head node\'s status (same as `hpcd local status`)'
complete -c hpcd -n "__fish_hpcd_using_subcommand help; and not __fish_seen_subcommand_from head local status run-task run-rank slurm-job help" -f -a "run-task" -d 'Supervises one task run (started by the node agent; not for users)'
complete -c hpcd -n "__fish_hpcd_using_subcommand help; and not __fish_seen_subcommand_from head local status run-task run-rank slurm-job help" -f -a "run-rank" -d 'Supervises one MPI rank (started by the launch service with the request on stdin and mpiexec\'s connection as descriptor 3; not for users)'
complete -c hpcd -n "__fish_hpcd_using_subcommand help; and not __fish_seen_subcommand_from head local status run-task run-rank slurm-job help" -f -a "slurm-job" -d 'Runs the tasks of a job the Slurm backend submitted, as its batch script (not for users)'
complete -c hpcd -n "__fish_hpcd_using_subcommand help; and not __fish_seen_subcommand_from head local status run-task run-rank slurm-job help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hpcd -n "__fish_hpcd_using_subcommand help; and __fish_seen_subcommand_from local" -f -a "start" -d 'Starts the embedded head node in the background, unless it runs already'
complete -c hpcd -n "__fish_hpcd_using_subcommand help; and __fish_seen_subcommand_from local" -f -a "stop" -d 'Stops the embedded head node. Running tasks go on; it finds them again when it starts'
complete -c hpcd -n "__fish_hpcd_using_subcommand help; and __fish_seen_subcommand_from local" -f -a "status" -d 'Reports whether the embedded head node runs, and its nodes and jobs'
