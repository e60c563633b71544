/* placeholder until nshm-stat lands */
#include "cli.h"
int main(void) { return 0; }
