_job() {
    local i cur prev opts cmd
    COMPREPLY=()
    if [[ "${BASH_VERSINFO[0]}" -ge 4 ]]; then
        cur="$2"
    else
        cur="${COMP_WORDS[COMP_CWORD]}"
    fi
    prev="$3"
    cmd=""
    opts=""

    for i in "${COMP_WORDS[@]:0:COMP_CWORD}"
    do
        case "${cmd},${i}" in
            ",$1")
                cmd="job"
                ;;
            job,add)
                cmd="job__subcmd__add"
                ;;
            job,cancel)
                cmd="job__subcmd__cancel"
                ;;
            job,finish)
                cmd="job__subcmd__finish"
                ;;
            job,list)
                cmd="job__subcmd__list"
                ;;
            job,listtasks)
                cmd="job__subcmd__listtasks"
                ;;
            job,modify)
                cmd="job__subcmd__modify"
                ;;
            job,new)
                cmd="job__subcmd__new"
                ;;
            job,requeue)
                cmd="job__subcmd__requeue"
                ;;
            job,submit)
                cmd="job__subcmd__submit"
                ;;
            job,view)
                cmd="job__subcmd__view"
                ;;
            job,wait)
                cmd="job__subcmd__wait"
                ;;
            *)
                ;;
        esac
    done

    case "${cmd}" in
        job)
            opts="-h --help add cancel finish list listtasks modify new requeue submit view wait"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 1 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        job__subcmd__add)
            opts="-h --depend --exclusive --numcores --numnodes --numsockets --numprocessors --requirednodes --runtime --validexitcodes --name --env --stdout --stderr --stdin --workdir --rerunnable --type --scheduler --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --depend)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --exclusive)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --numcores)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --numnodes)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --numsockets)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --numprocessors)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --requirednodes)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --runtime)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --validexitcodes)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --name)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --env)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --stdout)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --stderr)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --stdin)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --workdir)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --rerunnable)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --type)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --scheduler)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        job__subcmd__cancel)
            opts="-h --message --scheduler --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --message)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --scheduler)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        job__subcmd__finish)
            opts="-h --message --scheduler --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --message)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --scheduler)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        job__subcmd__list)
            opts="-h --all --format --jobname --jobtemplate --project --state --status --submittime --user --scheduler --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --format)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --jobname)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --jobtemplate)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --project)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --state)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --status)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --submittime)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --user)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --scheduler)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        job__subcmd__listtasks)
            opts="-h --expand --format --state --status --scheduler --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --format)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --state)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --status)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --scheduler)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        job__subcmd__modify)
            opts="-h --askednodes --requestednodes --corespernode --customproperties --exclusive --failontaskfailure --holduntil --jobenv --jobname --jobtemplate --memorypernode --nodegroup --nodegroupop --numcores --numnodes --numsockets --numprocessors --priority --progress --progressmsg --projectname --runtime --validexitcodes --scheduler --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --askednodes)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --requestednodes)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --corespernode)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --customproperties)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --exclusive)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --failontaskfailure)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --holduntil)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --jobenv)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --jobname)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --jobtemplate)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --memorypernode)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --nodegroup)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --nodegroupop)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --numcores)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --numnodes)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --numsockets)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --numprocessors)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --priority)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --progress)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --progressmsg)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --projectname)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --runtime)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --validexitcodes)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --scheduler)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        job__subcmd__new)
            opts="-h --askednodes --requestednodes --corespernode --customproperties --exclusive --failontaskfailure --holduntil --jobenv --jobname --jobtemplate --memorypernode --nodegroup --nodegroupop --numcores --numnodes --numsockets --numprocessors --priority --progress --progressmsg --projectname --runtime --validexitcodes --jobfile --scheduler --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --askednodes)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --requestednodes)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --corespernode)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --customproperties)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --exclusive)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --failontaskfailure)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --holduntil)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --jobenv)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --jobname)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --jobtemplate)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --memorypernode)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --nodegroup)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --nodegroupop)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --numcores)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --numnodes)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --numsockets)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --numprocessors)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --priority)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --progress)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --progressmsg)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --projectname)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --runtime)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --validexitcodes)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --jobfile)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --scheduler)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        job__subcmd__requeue)
            opts="-h --scheduler --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --scheduler)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        job__subcmd__submit)
            opts="-h --id --jobfile --askednodes --requestednodes --corespernode --customproperties --exclusive --failontaskfailure --holduntil --jobenv --jobname --jobtemplate --memorypernode --nodegroup --nodegroupop --numcores --numnodes --numsockets --numprocessors --priority --progress --progressmsg --projectname --runtime --validexitcodes --name --env --stdout --stderr --stdin --workdir --rerunnable --type --wait --scheduler --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --id)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --jobfile)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --askednodes)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --requestednodes)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --corespernode)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --customproperties)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --exclusive)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --failontaskfailure)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --holduntil)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --jobenv)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --jobname)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --jobtemplate)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --memorypernode)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --nodegroup)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --nodegroupop)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --numcores)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --numnodes)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --numsockets)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --numprocessors)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --priority)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --progress)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --progressmsg)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --projectname)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --runtime)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --validexitcodes)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --name)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --env)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --stdout)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --stderr)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --stdin)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --workdir)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --rerunnable)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --type)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --scheduler)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        job__subcmd__view)
            opts="-h --detailed --history --format --scheduler --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --detailed)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --history)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --format)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --scheduler)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        job__subcmd__wait)
            opts="-h --timeout --quiet --scheduler --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --timeout)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --scheduler)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
    esac
}

if [[ "${BASH_VERSINFO[0]}" -eq 4 && "${BASH_VERSINFO[1]}" -ge 4 || "${BASH_VERSINFO[0]}" -gt 4 ]]; then
    complete -F _job -o nosort -o bashdefault -o default job
else
    complete -F _job -o bashdefault -o default job
fi
