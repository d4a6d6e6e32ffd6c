# bash completion for mpiexec: options until the program, then files
_mpiexec() {
    local cur=${COMP_WORDS[COMP_CWORD]}
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "-------- -a -aa -affinity -affinity_auto -affinity_layout -al -c -configfile -cores -d -debug -dir -env -exitcodes -gdir -genv -genvlist -ghost -gmachinefile -gpath -gwdir -help -help2 -help3 -host -hosts -job -l -lines -logFile -machinefile -n -np -optionfile -p -path -port -priority -pwd -saveCreds -timeout -unicode -wdir" -- "$cur"))
    fi
}
complete -o default -o bashdefault -F _mpiexec mpiexec
