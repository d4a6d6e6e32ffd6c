#compdef mpiexec
# zsh completion for mpiexec: options until the program, then files
local -a opts
opts=(-------- -a -aa -affinity -affinity_auto -affinity_layout -al -c -configfile -cores -d -debug -dir -env -exitcodes -gdir -genv -genvlist -ghost -gmachinefile -gpath -gwdir -help -help2 -help3 -host -hosts -job -l -lines -logFile -machinefile -n -np -optionfile -p -path -port -priority -pwd -saveCreds -timeout -unicode -wdir)
if [[ $PREFIX == -* ]]; then
    compadd -a opts
else
    _files
fi
