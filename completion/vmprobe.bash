# bash completion for vmprobe(8). Source it, or copy it to
# /usr/share/bash-completion/completions/vmprobe.

# VM names and PIDs from `vmprobe list --json` (needs root; nothing otherwise).
_vmprobe_vms() {
	vmprobe list --json 2>/dev/null | python3 -c '
import json, sys
for vm in json.load(sys.stdin):
    print(vm["name"])' 2>/dev/null
}

_vmprobe() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
	local cmd=${COMP_WORDS[1]:-}

	if [ "$COMP_CWORD" -eq 1 ]; then
		mapfile -t COMPREPLY < <(compgen -W "serve check list top hist metrics config version help --help --version" -- "$cur")
		return
	fi
	case $prev in
	-c | --config | --web.config.file)
		mapfile -t COMPREPLY < <(compgen -f -- "$cur"); return ;;
	--sort | -s)
		mapfile -t COMPREPLY < <(compgen -W "rxpk txpk rxbit txbit riops wiops rmb wmb p99 name" -- "$cur"); return ;;
	--listen | -l | --web.max-requests | -d | --delay | -n | --count | -i | --interval | --disk | --net | -N)
		return ;;
	esac
	case $cmd in
	serve) mapfile -t COMPREPLY < <(compgen -W "--config --listen --web.config.file --web.max-requests --help" -- "$cur") ;;
	check | list) mapfile -t COMPREPLY < <(compgen -W "--json --help" -- "$cur") ;;
	metrics) mapfile -t COMPREPLY < <(compgen -W "--markdown --help" -- "$cur") ;;
	top) mapfile -t COMPREPLY < <(compgen -W "--delay --count --batch --sort --help" -- "$cur") ;;
	hist)
		if [[ $cur == -* ]]; then
			mapfile -t COMPREPLY < <(compgen -W "--disk --net --interval --count --help" -- "$cur")
		else
			local IFS=$'\n'
			mapfile -t COMPREPLY < <(compgen -W "$(_vmprobe_vms)" -- "$cur")
		fi ;;
	config)
		if [ "$COMP_CWORD" -eq 2 ]; then
			mapfile -t COMPREPLY < <(compgen -W "check default" -- "$cur")
		else
			mapfile -t COMPREPLY < <(compgen -f -- "$cur")
		fi ;;
	esac
}
complete -F _vmprobe vmprobe
