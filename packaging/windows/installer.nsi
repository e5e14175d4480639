; The Windows installer (NSIS 3). build.sh runs makensis with these defined:
;   VERSION (0.1.0), VERSION4 (0.1.0.1), SRC (a folder with DazaarVision.exe,
;   dazaar-vision.exe and icon.ico), OUTFILE, and SIGN when the uninstaller is to be signed
;   (a command that signs the file named after it, in place).
; What it does: installs both programs into Program Files\Dazaar Vision, adds a Start-menu
; entry for the window, an uninstaller and its Add/Remove Programs entry. /S installs silently,
; /D=C:\path (last on the command line) picks the folder. The uninstaller keeps what the app
; stored in the user's profile (streams, feed keys, settings): a reinstall resumes them.
Unicode true
Target amd64-unicode
ManifestDPIAware true
RequestExecutionLevel admin
SetCompressor /SOLID lzma
SetCompressorDictSize 64 ; both programs in one window: the second costs little

!include "MUI2.nsh"
!include "FileFunc.nsh"

!define APPNAME "Dazaar Vision"
!define APPID "vision.dazaar.app"
!define UNINSTKEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\${APPID}"

Name "${APPNAME}"
OutFile "${OUTFILE}"
InstallDir "$PROGRAMFILES64\${APPNAME}"
InstallDirRegKey HKLM "${UNINSTKEY}" "InstallLocation"
BrandingText "${APPNAME} ${VERSION}"

VIProductVersion "${VERSION4}"
VIFileVersion "${VERSION4}"
VIAddVersionKey /LANG=1033 "ProductName" "${APPNAME}"
VIAddVersionKey /LANG=1033 "FileDescription" "${APPNAME} installer"
VIAddVersionKey /LANG=1033 "CompanyName" "The Dazaar Vision team"
VIAddVersionKey /LANG=1033 "LegalCopyright" "Copyright 2026 The Dazaar Vision team"
VIAddVersionKey /LANG=1033 "FileVersion" "${VERSION}"
VIAddVersionKey /LANG=1033 "ProductVersion" "${VERSION}"

!ifdef SIGN
!uninstfinalize '${SIGN} "%1"' = 0
!endif

!define MUI_ICON "${SRC}/icon.ico"
!define MUI_UNICON "${SRC}/icon.ico"
!define MUI_ABORTWARNING
; "Open" on the last page starts the app through Explorer, so it runs as the signed-in user
; (their own AppData and credentials), not with the installer's administrator rights.
!define MUI_FINISHPAGE_RUN
!define MUI_FINISHPAGE_RUN_TEXT "Open ${APPNAME}"
!define MUI_FINISHPAGE_RUN_FUNCTION OpenAsUser
!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_INSTFILES
!insertmacro MUI_PAGE_FINISH
!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_INSTFILES
!insertmacro MUI_LANGUAGE "English"

Function .onInit
  SetRegView 64
  SetShellVarContext all
FunctionEnd

Function un.onInit
  SetRegView 64
  SetShellVarContext all
FunctionEnd


Function OpenAsUser
  Exec '"$WINDIR\explorer.exe" "$INSTDIR\DazaarVision.exe"'
FunctionEnd

Section "Install"
  SetOutPath "$INSTDIR"
  ; A running copy holds its .exe, and File would leave the old program under the new version:
  ; ask for it to be closed (the window, or a dazaar-vision command) instead.
  retry:
  ClearErrors
  IfFileExists "$INSTDIR\DazaarVision.exe" 0 +2
    Delete "$INSTDIR\DazaarVision.exe"
  IfFileExists "$INSTDIR\dazaar-vision.exe" 0 +2
    Delete "$INSTDIR\dazaar-vision.exe"
  IfErrors 0 +3
    MessageBox MB_RETRYCANCEL|MB_ICONEXCLAMATION "${APPNAME} is running. Close it (and any dazaar-vision command), then choose Retry." /SD IDCANCEL IDRETRY retry
    Abort "${APPNAME} is running: close it and run the installer again."
  File "${SRC}/DazaarVision.exe"
  File "${SRC}/dazaar-vision.exe"
  WriteUninstaller "$INSTDIR\uninstall.exe"
  CreateShortcut "$SMPROGRAMS\${APPNAME}.lnk" "$INSTDIR\DazaarVision.exe" "" "$INSTDIR\DazaarVision.exe" 0 \
    SW_SHOWNORMAL "" "Go live or watch paid live video, peer to peer"

  WriteRegStr HKLM "${UNINSTKEY}" "DisplayName" "${APPNAME}"
  WriteRegStr HKLM "${UNINSTKEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKLM "${UNINSTKEY}" "Publisher" "The Dazaar Vision team"
  WriteRegStr HKLM "${UNINSTKEY}" "URLInfoAbout" "https://github.com/dazaarvision/dazaar-vision"
  WriteRegStr HKLM "${UNINSTKEY}" "DisplayIcon" "$INSTDIR\DazaarVision.exe,0"
  WriteRegStr HKLM "${UNINSTKEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKLM "${UNINSTKEY}" "UninstallString" '"$INSTDIR\uninstall.exe"'
  WriteRegStr HKLM "${UNINSTKEY}" "QuietUninstallString" '"$INSTDIR\uninstall.exe" /S'
  WriteRegDWORD HKLM "${UNINSTKEY}" "NoModify" 1
  WriteRegDWORD HKLM "${UNINSTKEY}" "NoRepair" 1
  ${GetSize} "$INSTDIR" "/S=0K" $0 $1 $2
  WriteRegDWORD HKLM "${UNINSTKEY}" "EstimatedSize" $0
SectionEnd

Section "Uninstall"
  ; A running copy holds its .exe: stop before the uninstall entry is removed, so that it can be
  ; run again once the app is closed.
  ClearErrors
  Delete "$INSTDIR\DazaarVision.exe"
  Delete "$INSTDIR\dazaar-vision.exe"
  IfErrors 0 +2
    Abort "${APPNAME} is running: close it (and any dazaar-vision command), then uninstall again."
  Delete "$SMPROGRAMS\${APPNAME}.lnk"
  Delete "$INSTDIR\uninstall.exe"
  RMDir "$INSTDIR"
  DeleteRegKey HKLM "${UNINSTKEY}"
SectionEnd
