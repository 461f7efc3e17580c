
# bash: installed as share/bash-completion/completions/coffer.
_coffer()
{
	local cur=${COMP_WORDS[COMP_CWORD]} bin=${COMP_WORDS[0]} cmd="" sub="" i w
	for ((i = 1; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		[[ $w == -- ]] && return 0 # a command line of the app's own (deploy -- ...)
		[[ $w == -* ]] && continue
		if [[ -z $cmd ]]; then
			cmd=$w
		elif [[ -z $sub ]]; then
			sub=$w
		fi
	done
	# a second word is a subcommand only if the command has it
	[[ $cmd == help && -n $sub ]] && return 0
	if [[ -n $sub ]] && ! _coffer_words "$bin" "$cmd" "" | grep -qxF -- "$sub"; then
		sub=""
	fi
	local want=""
	[[ $cur == -* ]] && want=-
	COMPREPLY=($(compgen -W "$(_coffer_words "$bin" "$cmd" "$sub" "$want")" -- "$cur"))
}

complete -o default -F _coffer coffer
